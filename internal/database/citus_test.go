package database_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"

	"github.com/vehicle-data/vehicle-data/internal/testdb"
)

// The placement of a table on a Citus cluster.
const (
	citusDistributed = "distributed" // hash-sharded by column
	citusReference   = "reference"   // one copy on every node
	citusLocal       = "local"       // a plain table on the coordinator only
)

type citusTable struct {
	name         string
	kind         string
	column       string // distributed: the distribution column
	colocateWith string // distributed: the table whose shards it shares; "" starts a group
}

// citusPlan places every table of the schema on Citus. It is the one list of it:
// TestSchemaFitsCitus checks the migrated schema against it, and docs/scaling.md carries the
// DDL it renders (TestCitusDocMatchesPlan), with the reasons. A table that is not here fails
// the test: whoever adds one decides where it goes.
var citusPlan = []citusTable{
	{name: "vehicles", kind: citusReference},       // small, joined to samples, read by id and key
	{name: "server_secrets", kind: citusReference}, // one row, read by every replica
	{name: "samples", kind: citusDistributed, column: "vehicle_key"},
	{name: "sample_five_minutes", kind: citusDistributed, column: "vehicle_key", colocateWith: "samples"},
	{name: "sample_hours", kind: citusDistributed, column: "vehicle_key", colocateWith: "samples"},
	{name: "sample_hour_states", kind: citusDistributed, column: "vehicle_key", colocateWith: "samples"},
	{name: "uploads", kind: citusLocal},       // the purge's FOR UPDATE SKIP LOCKED spans uploads
	{name: "upload_chunks", kind: citusLocal}, // references uploads; short-lived
	{name: goose.DefaultTablename, kind: citusLocal},
}

// citusDDL is the SQL that places the tables as plan says, to run on the coordinator after the
// migrations.
func citusDDL(plan []citusTable) string {
	var b strings.Builder
	for _, t := range plan {
		switch t.kind {
		case citusReference:
			fmt.Fprintf(&b, "SELECT create_reference_table('%s');\n", t.name)
		case citusDistributed:
			with := t.colocateWith
			if with == "" {
				with = "none"
			}
			fmt.Fprintf(&b, "SELECT create_distributed_table('%s', '%s', colocate_with => '%s');\n", t.name, t.column, with)
		case citusLocal:
			fmt.Fprintf(&b, "-- %s stays a local table on the coordinator\n", t.name)
		}
	}
	return b.String()
}

type pgColumn struct {
	name, typ string
	notNull   bool
}

// citusProblems reads the catalog of pool's database (its current schema) and returns, one
// sentence each, what keeps plan from working on Citus: a table the plan does not place (or
// places but the schema lacks), a distribution column that is missing, nullable or of another
// type than its co-location group's, a primary key or unique index on a distributed table
// whose key lacks the distribution column, and a foreign key that Citus cannot keep (the
// rules of its docs, "Creating and Modifying Distributed Tables (DDL)", "Foreign keys").
func citusProblems(ctx context.Context, pool *pgxpool.Pool, plan []citusTable) ([]string, error) {
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// Every column of every table (partitions go with their parent), by table and number.
	cols := map[string]map[int16]pgColumn{}
	var (
		table string
		num   int16
		col   pgColumn
	)
	rows, _ := pool.Query(ctx, `
SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition`)
	if _, err := pgx.ForEachRow(rows, []any{&table, &num, &col.name, &col.typ, &col.notNull}, func() error {
		if cols[table] == nil {
			cols[table] = map[int16]pgColumn{}
		}
		cols[table][num] = col
		return nil
	}); err != nil {
		return nil, fmt.Errorf("columns: %w", err)
	}
	// attnum of the distribution column of every distributed table; 0 when it lacks it.
	distCol := func(t citusTable) (int16, pgColumn) {
		for num, c := range cols[t.name] {
			if c.name == t.column {
				return num, c
			}
		}
		return 0, pgColumn{}
	}

	placed := map[string]citusTable{}
	for _, t := range plan {
		placed[t.name] = t
		if cols[t.name] == nil {
			report("citusPlan places table %s, which the schema does not have", t.name)
		}
	}
	tables := make([]string, 0, len(cols))
	for name := range cols {
		tables = append(tables, name)
	}
	slices.Sort(tables)
	for _, name := range tables {
		if _, ok := placed[name]; !ok {
			report("table %s is not in citusPlan: decide whether it is distributed (by which column), a reference table or local", name)
		}
	}

	// Co-location groups: a group is named by its first table.
	group := func(t citusTable) string {
		for range plan { // a bounded walk, so a cycle in the plan cannot hang the test
			next, ok := placed[t.colocateWith]
			if t.colocateWith == "" || !ok || next.kind != citusDistributed {
				break
			}
			t = next
		}
		return t.name
	}
	for _, t := range plan {
		if t.kind != citusDistributed || cols[t.name] == nil {
			continue
		}
		if w, ok := placed[t.colocateWith]; t.colocateWith != "" && (!ok || w.kind != citusDistributed) {
			report("%s is co-located with %s, which citusPlan does not distribute", t.name, t.colocateWith)
		}
		num, c := distCol(t)
		switch {
		case num == 0:
			report("%s has no column %s to be distributed by", t.name, t.column)
			continue
		case !c.notNull:
			report("%s.%s may be NULL: Citus refuses a row without a distribution value", t.name, t.column)
		}
		if root := placed[group(t)]; root.name != t.name {
			if _, rc := distCol(root); rc.name != "" && rc.typ != c.typ {
				report("%s.%s is %s but its co-location group's %s.%s is %s: co-located tables need one type",
					t.name, t.column, c.typ, root.name, root.column, rc.typ)
			}
		}
	}

	// Primary keys and unique indexes of distributed tables: the distribution column must be
	// one of the key columns (INCLUDE columns do not count: they are not unique).
	var (
		index, def string
		keys       []int16
		nkeys      int16
	)
	rows, _ = pool.Query(ctx, `
SELECT t.relname, i.relname, x.indkey::int2[], x.indnkeyatts, pg_get_indexdef(x.indexrelid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
WHERE t.relnamespace = current_schema()::regnamespace AND x.indisunique
ORDER BY 1, 2`)
	if _, err := pgx.ForEachRow(rows, []any{&table, &index, &keys, &nkeys, &def}, func() error {
		t, ok := placed[table]
		if !ok || t.kind != citusDistributed {
			return nil
		}
		if num, _ := distCol(t); num == 0 || !slices.Contains(keys[:nkeys], num) {
			report("%s: unique index %s lacks the distribution column %s in its key (%s)", table, index, t.column, def)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("unique indexes: %w", err)
	}

	// Foreign keys.
	var (
		name, from, to   string
		fromCols, toCols []int16
	)
	rows, _ = pool.Query(ctx, `
SELECT con.conname, src.relname, dst.relname, con.conkey, con.confkey
FROM pg_constraint con
JOIN pg_class src ON src.oid = con.conrelid
JOIN pg_class dst ON dst.oid = con.confrelid
WHERE con.contype = 'f' AND src.relnamespace = current_schema()::regnamespace
ORDER BY 1`)
	if _, err := pgx.ForEachRow(rows, []any{&name, &from, &to, &fromCols, &toCols}, func() error {
		f, t := placed[from], placed[to]
		switch {
		case f.kind == "" || t.kind == "":
			// reported above as not placed
		case f.kind == citusDistributed && t.kind == citusDistributed:
			if group(f) != group(t) {
				report("foreign key %s joins %s and %s, which are not co-located", name, from, to)
				break
			}
			fn, _ := distCol(f)
			tn, _ := distCol(t)
			paired := false
			for i := range fromCols {
				paired = paired || (fromCols[i] == fn && i < len(toCols) && toCols[i] == tn)
			}
			if !paired {
				report("foreign key %s from %s to %s does not pair %s.%s with %s.%s: between distributed tables it must",
					name, from, to, from, f.column, to, t.column)
			}
		case f.kind == citusDistributed && t.kind != citusReference:
			report("foreign key %s goes from distributed %s to %s table %s: a distributed table may reference only a co-located one or a reference table",
				name, from, t.kind, to)
		case f.kind != citusDistributed && t.kind == citusDistributed:
			report("foreign key %s goes from %s table %s to distributed %s: only a co-located distributed table may reference one",
				name, f.kind, from, to)
		}
		// local <-> reference and reference -> reference are supported.
		return nil
	}); err != nil {
		return nil, fmt.Errorf("foreign keys: %w", err)
	}
	return problems, nil
}

func TestSchemaFitsCitus(t *testing.T) {
	pool := testdb.New(t)
	problems, err := citusProblems(t.Context(), pool, citusPlan)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// The checker sees what it must: each case changes a fresh migrated schema (or the plan) and
// names what it must report (nothing, for changes Citus accepts).
func TestCitusProblems(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		plan func([]citusTable) []citusTable // nil: citusPlan
		want string                          // a substring of the one problem expected; "" for none
	}{
		{
			name: "unique index without the distribution column",
			sql:  `CREATE UNIQUE INDEX samples_id_key ON samples (id)`,
			want: "unique index samples_id_key lacks the distribution column vehicle_key",
		},
		{
			name: "distribution column only included",
			sql:  `CREATE UNIQUE INDEX sample_hours_bucket_key ON sample_hours (bucket) INCLUDE (vehicle_key)`,
			want: "unique index sample_hours_bucket_key lacks",
		},
		{
			name: "unique index with the distribution column",
			sql:  `CREATE UNIQUE INDEX samples_key_id_key ON samples (vehicle_key, id)`,
		},
		{
			name: "foreign key between co-located tables off the distribution column",
			sql:  `ALTER TABLE sample_hours ADD CONSTRAINT sample_hours_five_fkey FOREIGN KEY (n, bucket) REFERENCES sample_five_minutes (vehicle_key, bucket)`,
			want: "foreign key sample_hours_five_fkey from sample_hours to sample_five_minutes does not pair",
		},
		{
			name: "foreign key between co-located tables on the distribution column",
			sql:  `ALTER TABLE sample_hours ADD CONSTRAINT sample_hours_five_fkey FOREIGN KEY (vehicle_key, bucket) REFERENCES sample_five_minutes (vehicle_key, bucket)`,
		},
		{
			name: "foreign key from a distributed table to a reference table",
			sql:  `ALTER TABLE samples ADD CONSTRAINT samples_vehicle_fkey FOREIGN KEY (vehicle_key) REFERENCES vehicles (vehicle_key)`,
		},
		{
			name: "foreign key from a distributed table to a local table",
			sql: `ALTER TABLE samples ADD COLUMN vehicle_id text, ADD COLUMN file_name text,
				ADD CONSTRAINT samples_upload_fkey FOREIGN KEY (vehicle_id, file_name) REFERENCES uploads (vehicle_id, file_name)`,
			want: "foreign key samples_upload_fkey goes from distributed samples to local table uploads",
		},
		{
			name: "foreign key from a reference table to a distributed table",
			sql: `ALTER TABLE vehicles ADD COLUMN first_minute timestamptz,
				ADD CONSTRAINT vehicles_first_minute_fkey FOREIGN KEY (vehicle_key, first_minute) REFERENCES sample_five_minutes (vehicle_key, bucket)`,
			want: "foreign key vehicles_first_minute_fkey goes from reference table vehicles to distributed sample_five_minutes",
		},
		{
			name: "foreign key from a local table to a distributed table",
			sql: `ALTER TABLE upload_chunks ADD COLUMN vehicle_key integer, ADD COLUMN first_sample timestamptz,
				ADD CONSTRAINT upload_chunks_sample_fkey FOREIGN KEY (vehicle_key, first_sample) REFERENCES samples (vehicle_key, "timestamp")`,
			want: "foreign key upload_chunks_sample_fkey goes from local table upload_chunks to distributed samples",
		},
		{
			name: "foreign key between distributed tables that are not co-located",
			plan: func(p []citusTable) []citusTable {
				return replacePlaced(p, citusTable{name: "sample_hours", kind: citusDistributed, column: "vehicle_key"})
			},
			sql:  `ALTER TABLE sample_hours ADD CONSTRAINT sample_hours_five_fkey FOREIGN KEY (vehicle_key, bucket) REFERENCES sample_five_minutes (vehicle_key, bucket)`,
			want: "foreign key sample_hours_five_fkey joins sample_hours and sample_five_minutes, which are not co-located",
		},
		{
			name: "a table the plan does not place",
			sql:  `CREATE TABLE trips (vehicle_key integer NOT NULL, started timestamptz NOT NULL)`,
			want: "table trips is not in citusPlan",
		},
		{
			name: "a planned table the schema lacks",
			plan: func(p []citusTable) []citusTable { return append(p, citusTable{name: "trips", kind: citusLocal}) },
			want: "citusPlan places table trips, which the schema does not have",
		},
		{
			name: "a nullable distribution column",
			plan: func(p []citusTable) []citusTable {
				return replacePlaced(p, citusTable{name: "server_secrets", kind: citusDistributed, column: "value"})
			},
			sql:  `ALTER TABLE server_secrets ALTER COLUMN value DROP NOT NULL, DROP CONSTRAINT server_secrets_pkey`,
			want: "server_secrets.value may be NULL",
		},
		{
			name: "a co-location group of two types",
			plan: func(p []citusTable) []citusTable {
				return replacePlaced(p, citusTable{name: "sample_hours", kind: citusDistributed, column: "bucket", colocateWith: "samples"})
			},
			want: "sample_hours.bucket is timestamp with time zone but its co-location group's samples.vehicle_key is integer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := testdb.New(t)
			if tt.sql != "" {
				if _, err := pool.Exec(t.Context(), tt.sql); err != nil {
					t.Fatalf("%s: %v", tt.sql, err)
				}
			}
			plan := slices.Clone(citusPlan)
			if tt.plan != nil {
				plan = tt.plan(plan)
			}
			got, err := citusProblems(t.Context(), pool, plan)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("problems %q, want none", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Errorf("problems %q, want exactly one containing %q", got, tt.want)
			}
		})
	}
}

// replacePlaced returns plan with the entry of t's table replaced by t.
func replacePlaced(plan []citusTable, t citusTable) []citusTable {
	for i := range plan {
		if plan[i].name == t.name {
			plan[i] = t
		}
	}
	return plan
}

// The DDL in docs/scaling.md is the plan's.
func TestCitusDocMatchesPlan(t *testing.T) {
	doc, err := os.ReadFile("../../docs/scaling.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := citusDDL(citusPlan); !strings.Contains(string(doc), want) {
		t.Errorf("docs/scaling.md lacks the DDL of citusPlan; put this block in it:\n%s", want)
	}
}
