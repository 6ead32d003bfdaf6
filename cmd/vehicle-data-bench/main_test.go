package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRunRejectsBadArguments covers what fails before anything starts.
func TestRunRejectsBadArguments(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "no command", args: nil, wantErr: "no command given"},
		{name: "unknown command", args: []string{"lists"}, wantErr: `unknown command "lists"`},
		{name: "unknown flag", args: []string{"ingest", "--nope"}, wantErr: "flag provided but not defined"},
		{name: "out is for ingest and export", args: []string{"list", "--out", "r.json"}, wantErr: "flag provided but not defined: -out"},
		{name: "formats is an export flag", args: []string{"ingest", "--formats", "csv"}, wantErr: "flag provided but not defined"},
		{name: "stray argument", args: []string{"export", "file.csv"}, wantErr: "unexpected arguments: file.csv"},
		{name: "zero rows", args: []string{"ingest", "--rows", "0"}, wantErr: "at least 1"},
		{name: "zero runs", args: []string{"export", "--runs", "0"}, wantErr: "at least 1"},
		{name: "unknown format", args: []string{"export", "--formats", "csv,parquet", "--bin", "/nonexistent"}, wantErr: `unknown export format "parquet"`},
		{name: "missing binary", args: []string{"ingest", "--bin", "/nonexistent/vehicle-data"}, wantErr: "run make build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
			if stdout.Len() != 0 {
				t.Errorf("got stdout %q, want nothing", stdout.String())
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"help"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "vehicle-data-bench ingest|export") {
		t.Errorf("got %q, want the usage", stdout.String())
	}
}

func TestSplitList(t *testing.T) {
	got := splitList(" csv, ,json,")
	if strings.Join(got, "|") != "csv|json" {
		t.Errorf("got %q, want [csv json]", got)
	}
}
