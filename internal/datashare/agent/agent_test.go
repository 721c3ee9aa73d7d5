package agent_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/core"
	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/datashare/agent"
	"github.com/causewayhq/causeway/internal/store"
	"github.com/causewayhq/causeway/internal/store/storetest"
)

// produce runs a job through the agent and decrypts the result.
func produce(t *testing.T, a *agent.Agent, job *datashare.Job) []byte {
	t.Helper()
	id, _ := age.GenerateX25519Identity()
	job.Recipient = id.Recipient().String()
	rc, err := a.Produce(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	r, err := age.Decrypt(rc, id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func generatorJob(name, format string) *datashare.Job {
	return &datashare.Job{Format: format, Dataset: datashare.JobSource{Name: name, Columns: datashare.Generators[name].Columns,
		Source: datashare.Source{Kind: datashare.SourceGenerator, Generator: name}}}
}

func TestSandboxDatasetsArePseudonymized(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := core.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		bank := core.New(db, core.Options{})
		customerIDs, err := bank.SeedApp(ctx, "app_x", 42, 2)
		if err != nil {
			t.Fatal(err)
		}
		eur := func(s string) core.Money { m, _ := core.ParseMoney(s, "EUR"); return m }
		if _, err := bank.ApplyForLoan(ctx, auth.AppCaller("app_x"), core.NewLoanApplication{CustomerID: customerIDs[0],
			Amount: eur("5000"), TermMonths: 24, Purpose: "  New   Car for the family of Jane Doe and her three children", MonthlyIncome: eur("3000")}); err != nil {
			t.Fatal(err)
		}
		key := bytes.Repeat([]byte{9}, 32)
		a, err := agent.New(agent.Config{DB: db, PseudonymKey: key})
		if err != nil {
			t.Fatal(err)
		}

		txns := produce(t, a, generatorJob(datashare.GenPseudonymizedTransactions, "csv"))
		records, err := csv.NewReader(bytes.NewReader(txns)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		var cols []string
		for _, c := range datashare.Generators[datashare.GenPseudonymizedTransactions].Columns {
			cols = append(cols, c.Name)
		}
		if !slices.Equal(records[0], cols) {
			t.Fatalf("header = %v", records[0])
		}
		var want int
		db.QueryRow(`SELECT count(*) FROM core_postings p JOIN core_accounts a ON a.id = p.account_id WHERE a.customer_id IS NOT NULL`).Scan(&want)
		if len(records)-1 != want || want < 100 {
			t.Fatalf("%d rows, want %d", len(records)-1, want)
		}
		hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
		categories := map[string]bool{"opening_balance": true, "salary": true, "rent": true, "mortgage": true, "utilities": true,
			"card_payment": true, "savings_transfer": true, "transfer": true, "loan": true, "deposit": true, "other": true}
		customers := map[string]bool{}
		for _, r := range records[1:] {
			if !hex32.MatchString(r[0]) || !hex32.MatchString(r[1]) || !categories[r[7]] || strings.HasPrefix(r[4], "-") {
				t.Fatalf("row %v", r)
			}
			customers[r[0]] = true
		}
		if len(customers) != 2 {
			t.Errorf("%d distinct customer hashes, want 2", len(customers))
		}
		// No identifying value of the bank's data appears.
		rows, _ := db.Query(`SELECT c.id, c.name, c.email, c.phone, c.city, a.id, a.iban FROM core_customers c JOIN core_accounts a ON a.customer_id = c.id`)
		defer rows.Close()
		loans := produce(t, a, generatorJob(datashare.GenLoanPerformance, "jsonl"))
		for rows.Next() {
			var vals [7]string
			rows.Scan(&vals[0], &vals[1], &vals[2], &vals[3], &vals[4], &vals[5], &vals[6])
			for _, v := range vals {
				if v != "" && (bytes.Contains(txns, []byte(v)) || bytes.Contains(loans, []byte(v))) {
					t.Errorf("the dataset contains %q", v)
				}
			}
		}
		var loan map[string]any
		if err := json.Unmarshal(bytes.SplitN(loans, []byte("\n"), 2)[0], &loan); err != nil {
			t.Fatalf("loans: %v: %s", err, loans)
		}
		if loan["purpose"] != "car" || loan["term_months"] != 24.0 || loan["amount"] != 5000.0 || !customers[loan["customer_hash"].(string)] {
			t.Errorf("loan row = %v", loan)
		}

		// Another key, other hashes.
		b, _ := agent.New(agent.Config{DB: db, PseudonymKey: bytes.Repeat([]byte{8}, 32)})
		other := produce(t, b, generatorJob(datashare.GenPseudonymizedTransactions, "csv"))
		for c := range customers {
			if bytes.Contains(other, []byte(c)) {
				t.Error("a different key gives the same customer hash")
			}
		}

		sets, err := agent.SandboxDatasets(ctx, db)
		if err != nil || len(sets) != 2 || sets[0].RowCount != int64(want) || sets[1].RowCount != 1 {
			t.Errorf("sandbox datasets = %+v, %v", sets, err)
		}
	})
}

func TestGeneratorsNeedTheBankDatabase(t *testing.T) {
	a, _ := agent.New(agent.Config{PseudonymKey: bytes.Repeat([]byte{1}, 16)})
	job := generatorJob(datashare.GenPseudonymizedTransactions, "csv")
	job.Recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
	if _, err := a.Produce(context.Background(), job); err == nil || !strings.Contains(err.Error(), "no bank database") {
		t.Errorf("err = %v", err)
	}
	if _, err := agent.New(agent.Config{PseudonymKey: []byte("short")}); err == nil {
		t.Error("a short key was accepted")
	}
}

func TestFileSourcesAreCopiedOrConvertedWithQuoting(t *testing.T) {
	dir := t.TempDir()
	a, _ := agent.New(agent.Config{PseudonymKey: bytes.Repeat([]byte{1}, 16), AllowedDirs: []string{dir}})
	cols := []datashare.Column{{Name: "name", Type: "string"}, {Name: "n", Type: "integer"}, {Name: "x", Type: "number"}, {Name: "ok", Type: "boolean"}}
	csvSrc := "name,n,x,ok\n\"Smith, J\",3,1.50,true\n\"say \"\"hi\"\"\",,abc,maybe\n"
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte(csvSrc), 0o600)
	job := func(file, format string) *datashare.Job {
		return &datashare.Job{Format: format, Dataset: datashare.JobSource{Columns: cols, Source: datashare.Source{Kind: "file", Path: filepath.Join(dir, file)}}}
	}
	if got := produce(t, a, job("a.csv", "csv")); string(got) != csvSrc {
		t.Errorf("csv copy = %q", got)
	}
	wantJSONL := `{"name":"Smith, J","n":3,"x":1.50,"ok":true}` + "\n" + `{"name":"say \"hi\"","n":null,"x":"abc","ok":"maybe"}` + "\n"
	got := produce(t, a, job("a.csv", "jsonl"))
	if string(got) != wantJSONL {
		t.Errorf("csv -> jsonl =\n%s\nwant\n%s", got, wantJSONL)
	}
	os.WriteFile(filepath.Join(dir, "b.jsonl"), got, 0o600)
	back := produce(t, a, job("b.jsonl", "csv"))
	if want := "name,n,x,ok\n\"Smith, J\",3,1.50,true\n\"say \"\"hi\"\"\",,abc,maybe\n"; string(back) != want {
		t.Errorf("jsonl -> csv = %q, want %q", back, want)
	}
}

func TestSyntheticIsDeterministicAndStopsWhenClosed(t *testing.T) {
	var a, b bytes.Buffer
	agent.Synthetic(context.Background(), &a, "csv", 1000, 3)
	agent.Synthetic(context.Background(), &b, "csv", 1000, 3)
	if !bytes.Equal(a.Bytes(), b.Bytes()) || strings.Count(a.String(), "\n") != 1001 {
		t.Fatal("synthetic data is not deterministic")
	}
	if per := a.Len() / 1000; per < agent.SyntheticRowBytes-15 || per > agent.SyntheticRowBytes+15 {
		t.Errorf("rows are %d bytes, SyntheticRowBytes says %d", per, agent.SyntheticRowBytes)
	}
	ag, _ := agent.New(agent.Config{PseudonymKey: bytes.Repeat([]byte{1}, 16)})
	id, _ := age.GenerateX25519Identity()
	rc, err := ag.Produce(context.Background(), &datashare.Job{Format: "csv", Recipient: id.Recipient().String(),
		Dataset: datashare.JobSource{Source: datashare.Source{Kind: "generator", Generator: "synthetic", Rows: 1 << 40}}})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	io.ReadFull(rc, buf)
	rc.Close() // must stop the endless generator; -race and the test timeout would tell
}

func TestLoadKeyCreatesAPrivateKeyFileOnce(t *testing.T) {
	dir := t.TempDir()
	k1, err := agent.LoadKey("", dir)
	if err != nil || len(k1) != 32 {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, agent.KeyFile))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	if k2, _ := agent.LoadKey("", dir); !bytes.Equal(k1, k2) {
		t.Error("the key changed")
	}
	if _, err := agent.LoadKey("bm90IDMyIGJ5dGVz", ""); err == nil {
		t.Error("a short key was accepted")
	}
}
