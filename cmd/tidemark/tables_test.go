package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseTables(t *testing.T) {
	tests := []struct {
		spec    string
		want    []int64
		wantErr string
	}{
		{spec: "1", want: []int64{1}},
		{spec: "0", want: []int64{0}},
		{spec: "1-3,200", want: []int64{1, 2, 3, 200}},
		{spec: " 7 , 2-3 ", want: []int64{2, 3, 7}},
		{spec: "5-5", want: []int64{5}},
		{spec: "9223372036854775806", want: []int64{9223372036854775806}},
		{spec: "", wantErr: "table list is empty"},
		{spec: "  ", wantErr: "table list is empty"},
		{spec: "1,,2", wantErr: "empty element"},
		{spec: "1,", wantErr: "empty element"},
		{spec: "x", wantErr: `"x" is not a table ID`},
		{spec: "-1", wantErr: "never negative"},
		{spec: "3-1", wantErr: "write it as 1-3"},
		{spec: "1-2-3", wantErr: `"2-3" is not a table ID`},
		{spec: "1-3,2", wantErr: "table 2 is listed more than once"},
		{spec: "9223372036854775807", wantErr: "is not a table ID"},
		{spec: "1-2000000", wantErr: "more than 1000000 tables"},
		{spec: "0-9223372036854775806", wantErr: "more than 1000000 tables"},
	}
	for _, tt := range tests {
		got, err := parseTables(tt.spec)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseTables(%q) error = %v, want it to contain %q", tt.spec, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseTables(%q) unexpected error: %v", tt.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseTables(%q) = %v, want %v", tt.spec, got, tt.want)
		}
	}
}

func TestParseLoads(t *testing.T) {
	tables := []int64{1, 2, 3}
	tests := []struct {
		spec    string
		want    map[int64]uint64
		wantErr string
	}{
		{spec: "", want: map[int64]uint64{}},
		{spec: "1=500", want: map[int64]uint64{1: 500}},
		{spec: "1=500, 3=0", want: map[int64]uint64{1: 500, 3: 0}},
		{spec: "1", wantErr: "is not table=load"},
		{spec: "1=x", wantErr: `load "x" of table 1`},
		{spec: "1=-5", wantErr: "not a whole number"},
		{spec: "9=5", wantErr: "table 9 is not in --tables"},
		{spec: "1=5,1=6", wantErr: "more than one load"},
		{spec: "a=5", wantErr: `"a" is not a table ID`},
	}
	for _, tt := range tests {
		got, err := parseLoads(tt.spec, tables)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseLoads(%q) error = %v, want it to contain %q", tt.spec, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseLoads(%q) unexpected error: %v", tt.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseLoads(%q) = %v, want %v", tt.spec, got, tt.want)
		}
	}
}
