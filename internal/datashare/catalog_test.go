package datashare_test

import (
	"context"
	"strings"
	"testing"

	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/datashare/agent"
	"github.com/causewayhq/causeway/internal/page"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

func TestBankPublishesDatasetsDevelopersBrowseSchemaAndSampleButNotSource(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHub(t, db)
		var file datashare.Dataset
		h.json("POST", "/bank/v1/datasets", adminToken, map[string]any{
			"name": "branch-visits", "description": "Visits per branch and day", "licence": "internal research only", "version": "2026.1",
			"columns": []map[string]any{{"name": "branch", "type": "string", "description": "Branch code"}, {"name": "visits", "type": "integer"}},
			"sample":  []map[string]any{{"branch": "B01", "visits": 42}},
			"formats": []string{"csv"}, "row_count": 1200,
			"source": map[string]any{"kind": "file", "path": "/srv/exports/visits.csv"},
		}, 201, &file)
		if !ids(file.ID, "ds") || file.Source == nil || file.Source.Path != "/srv/exports/visits.csv" {
			t.Fatalf("published = %+v", file)
		}
		gen := h.publishSynthetic("synthetic-small", 10)
		if len(gen.Columns) != len(datashare.Generators[datashare.GenSynthetic].Columns) || len(gen.Formats) != 2 || gen.Version != "1" {
			t.Errorf("generator dataset did not get the generator's schema and defaults: %+v", gen)
		}

		var page struct {
			Data []map[string]any `json:"data"`
		}
		h.json("GET", "/v1/datasets", "app_a", nil, 200, &page)
		if len(page.Data) != 2 {
			t.Fatalf("catalog has %d datasets, want 2", len(page.Data))
		}
		for _, d := range page.Data {
			if _, ok := d["source"]; ok {
				t.Errorf("a developer sees the source of %v", d["name"])
			}
			for _, k := range []string{"id", "name", "description", "columns", "sample", "formats", "row_count", "licence", "version"} {
				if _, ok := d[k]; !ok {
					t.Errorf("dataset %v lacks %s", d["name"], k)
				}
			}
		}
		var one map[string]any
		h.json("GET", "/v1/datasets/"+file.ID, "app_a", nil, 200, &one)
		if one["row_count"].(float64) != 1200 || one["sample"].([]any)[0].(map[string]any)["visits"].(float64) != 42 {
			t.Errorf("GET dataset = %v", one)
		}
		var bank datashare.Dataset
		h.json("GET", "/bank/v1/datasets/"+file.ID, adminToken, nil, 200, &bank)
		if bank.Source == nil || bank.Source.Kind != "file" {
			t.Errorf("the bank does not see the source: %+v", bank)
		}
		h.problem("GET", "/v1/datasets/ds_nope", "app_a", nil, 404, "not_found")
		h.problem("GET", "/v1/datasets", "", nil, 401, "unauthorized")
		h.problem("GET", "/v1/datasets", "noscope_x", nil, 403, "insufficient_scope")
		h.problem("POST", "/bank/v1/datasets", "app_a", map[string]any{}, 401, "unauthorized")
	})
}

func TestPublishingRefusesBadDatasets(t *testing.T) {
	h := newHub(t, storetest.OpenSQLite(t), func(o *datashare.Options) { o.SourceDirs = []string{"/srv/exports"} })
	cols := []map[string]any{{"name": "a", "type": "string"}}
	file := func(path string) map[string]any {
		return map[string]any{"name": "f", "description": "d", "columns": cols, "source": map[string]any{"kind": "file", "path": path}}
	}
	tests := []struct {
		name string
		body map[string]any
		code string
	}{
		{"bad name", map[string]any{"name": "Bad Name!", "source": map[string]any{"kind": "generator", "generator": "synthetic"}}, "invalid_name"},
		{"unknown generator", map[string]any{"name": "x", "source": map[string]any{"kind": "generator", "generator": "nope"}}, "unknown_generator"},
		{"unknown kind", map[string]any{"name": "x", "source": map[string]any{"kind": "ftp"}}, "validation_failed"},
		{"relative path", file("exports/a.csv"), "invalid_source"},
		{"path with dot-dot", file("/srv/exports/../../etc/passwd.csv"), "invalid_source"},
		{"outside the allowed dirs", file("/etc/shadow.csv"), "invalid_source"},
		{"not csv or jsonl", file("/srv/exports/a.parquet"), "invalid_source"},
		{"no description", map[string]any{"name": "f", "columns": cols, "source": map[string]any{"kind": "file", "path": "/srv/exports/a.csv"}}, "invalid_description"},
		{"file without columns", map[string]any{"name": "f", "description": "d", "source": map[string]any{"kind": "file", "path": "/srv/exports/a.csv"}}, "invalid_columns"},
		{"bad column type", map[string]any{"name": "f", "description": "d", "columns": []map[string]any{{"name": "a", "type": "blob"}}, "source": map[string]any{"kind": "file", "path": "/srv/exports/a.csv"}}, "validation_failed"},
		{"duplicate column", map[string]any{"name": "f", "description": "d", "columns": []map[string]any{{"name": "a", "type": "string"}, {"name": "a", "type": "string"}}, "source": map[string]any{"kind": "file", "path": "/srv/exports/a.csv"}}, "invalid_columns"},
		{"sample with unknown column", map[string]any{"name": "f", "description": "d", "columns": cols, "sample": []map[string]any{{"b": 1}}, "source": map[string]any{"kind": "file", "path": "/srv/exports/a.csv"}}, "invalid_sample"},
		{"unknown format", map[string]any{"name": "f", "description": "d", "columns": cols, "formats": []string{"xml"}, "source": map[string]any{"kind": "file", "path": "/srv/exports/a.csv"}}, "invalid_formats"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			status := 422
			h.problem("POST", "/bank/v1/datasets", adminToken, tt.body, status, tt.code)
		})
	}
	h.t = t
	h.publishSynthetic("twice", 1)
	h.problem("POST", "/bank/v1/datasets", adminToken, datashare.NewDataset{Name: "twice",
		Source: datashare.Source{Kind: datashare.SourceGenerator, Generator: datashare.GenSynthetic}}, 409, "dataset_exists")
}

func TestEnsureDatasetIsIdempotentAndRefreshesRowCount(t *testing.T) {
	h := newHub(t, storetest.OpenSQLite(t))
	ctx := context.Background()
	n := datashare.NewDataset{Name: "pseudonymized-transactions", RowCount: 10,
		Source: datashare.Source{Kind: datashare.SourceGenerator, Generator: datashare.GenPseudonymizedTransactions}}
	d1, created, err := h.svc.EnsureDataset(ctx, n)
	if err != nil || !created {
		t.Fatalf("first ensure: %v %v", created, err)
	}
	n.RowCount = 25
	d2, created, err := h.svc.EnsureDataset(ctx, n)
	if err != nil || created || d2.ID != d1.ID || d2.RowCount != 25 {
		t.Fatalf("second ensure = %+v %v %v", d2, created, err)
	}
}

func ids(id, prefix string) bool {
	return len(id) == len(prefix)+27 && id[:len(prefix)+1] == prefix+"_"
}

// TestCatalogRowCountIsWhatADownloadDelivers: the sandbox's datasets grow
// as the bank runs, so the catalog counts their rows when it is read, and
// a download made then holds that many; a synthetic dataset shows the rows
// it makes.
func TestCatalogRowCountIsWhatADownloadDelivers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := newHub(t, db, func(o *datashare.Options) { o.Rows = agent.RowCounter{DB: db} })
		if err := core.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		bank := core.New(db, core.Options{})
		if _, err := bank.SeedApp(ctx, "app_first", 1, 1); err != nil {
			t.Fatal(err)
		}
		sets, err := agent.SandboxDatasets(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		d, _, err := h.svc.EnsureDataset(ctx, sets[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bank.SeedApp(ctx, "app_second", 2, 1); err != nil {
			t.Fatal(err)
		}

		var one datashare.Dataset
		h.json("GET", "/v1/datasets/"+d.ID, "app_a", nil, 200, &one)
		if one.RowCount <= d.RowCount {
			t.Fatalf("row_count %d after the bank grew, %d when published", one.RowCount, d.RowCount)
		}
		var list page.Page[*datashare.Dataset]
		h.json("GET", "/bank/v1/datasets", adminToken, nil, 200, &list)
		if len(list.Data) != 1 || list.Data[0].RowCount != one.RowCount {
			t.Errorf("the list shows %+v, the dataset %d rows", list.Data, one.RowCount)
		}

		h.runProducer(newAgent(t, db))
		id := newIdentity(t)
		r := h.request("app_a", d.ID, id.Recipient().String())
		h.approve(r.ID)
		ciphertext, _ := h.waitReady("app_a", r.ID, "jsonl")
		if rows := strings.Count(string(decrypt(t, ciphertext, id)), "\n"); int64(rows) != one.RowCount {
			t.Errorf("the download holds %d rows, the catalog says %d", rows, one.RowCount)
		}

		s := h.publishSynthetic("synthetic-rows", 123)
		h.json("GET", "/v1/datasets/"+s.ID, "app_a", nil, 200, &one)
		if one.RowCount != 123 {
			t.Errorf("a synthetic dataset of 123 rows shows row_count %d", one.RowCount)
		}
	})
}
