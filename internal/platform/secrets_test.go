package platform_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/httpapi/openapitest"
	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/spi/spitest"
)

// TestNoSecretIsStoredInTheClear makes every secret and token the API hands
// out, with an Idempotency-Key wherever the gateway honours one (its stored
// response is what once kept them in the clear for 24 h), checks that each
// retry replays the first answer byte for byte, and then looks for every
// secret in what a backup would hold: every file of the data dir (the
// SQLite file with its -wal and -shm, the embedded NATS) and, on
// PostgreSQL, a dump of the node's schema. It looks for the secret as it
// is and hex-encoded, and for its base64 in the four alphabets at the three
// alignments a secret can have inside a longer encoded text.
func TestNoSecretIsStoredInTheClear(t *testing.T) {
	t.Parallel()
	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		cfg := rt.Config(t)
		n := platformtest.Start(t, cfg)
		doc := openapitest.Fetch(t, n.URL)
		var secrets []string
		keep := func(what, s string) {
			t.Helper()
			if len(s) < 16 {
				t.Fatalf("%s: %q is too short to be a secret", what, s)
			}
			secrets = append(secrets, s)
		}
		// once makes an idempotent POST, retries it, and returns the
		// answer after checking the retry replays it exactly.
		key := 0
		once := func(c *client, path string, body any, status int, into any) {
			t.Helper()
			key++
			k := fmt.Sprintf("secrets-%d", key)
			first := c.do("POST", path, "", body, "Idempotency-Key", k)
			if first.status != status {
				t.Fatalf("POST %s: %d %s, want %d", path, first.status, first.body, status)
			}
			again := c.do("POST", path, "", body, "Idempotency-Key", k)
			if again.header.Get("Idempotent-Replayed") != "true" || again.status != status || !bytes.Equal(again.body, first.body) {
				t.Errorf("POST %s again: %d replayed=%q %s, want the first answer %s", path, again.status,
					again.header.Get("Idempotent-Replayed"), again.body, first.body)
			}
			first.decode(t, into)
		}

		anon := &client{t: t, base: n.URL, doc: doc}
		const password = "a password nobody else uses 7361"
		keep("password", password)
		var dev struct{ Token string }
		anon.do("POST", "/v1/developers", "", map[string]any{"email": "keeper@secrets.example", "password": password,
			"organization": "Secrets"}, "Idempotency-Key", "signup").decode(t, &dev)
		keep("sign-up token", dev.Token)
		var login struct{ Token string }
		anon.do("POST", "/v1/developers/login", "", map[string]any{"email": "keeper@secrets.example", "password": password},
			"Idempotency-Key", "login").decode(t, &login)
		keep("login token", login.Token)

		d := &client{t: t, base: n.URL, token: dev.Token, doc: doc}
		var app struct {
			ID           string
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		once(d, "/v1/apps", map[string]any{"name": "Keeper", "scopes": []string{"events:read", "webhooks:write", "spi:write", "accounts:read"}}, 201, &app)
		keep("client secret", app.ClientSecret)
		var rotated struct {
			ClientSecret string `json:"client_secret"`
		}
		once(d, "/v1/apps/"+app.ID+"/rotate-secret", nil, 200, &rotated)
		keep("rotated client secret", rotated.ClientSecret)
		cc := clientcredentials.Config{ClientID: app.ClientID, ClientSecret: rotated.ClientSecret, TokenURL: n.URL + "/oauth2/token"}
		tok, err := cc.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		keep("access token", tok.AccessToken)

		a := &client{t: t, base: n.URL, token: tok.AccessToken, doc: doc}
		hooks := httptest.NewServer(&rawReceiver{})
		defer hooks.Close()
		var wh struct{ ID, Secret string }
		once(a, "/v1/webhooks", map[string]any{"url": hooks.URL, "event_types": []string{"payment.*"}}, 201, &wh)
		keep("webhook secret", wh.Secret)
		var whRotated struct{ Secret string }
		once(a, "/v1/webhooks/"+wh.ID+"/rotate-secret", nil, 200, &whRotated)
		keep("rotated webhook secret", whRotated.Secret)
		spi := spitest.New(t, map[string]any{"insights": []any{}})
		var reg struct{ ID, Secret string }
		once(a, "/v1/spi-registrations", map[string]any{"extension_point": "accounts.lookup", "url": spi.URL}, 201, &reg)
		keep("SPI secret", reg.Secret)
		var regRotated struct{ Secret string }
		once(a, "/v1/spi-registrations/"+reg.ID+"/rotate-secret", nil, 200, &regRotated)
		keep("rotated SPI secret", regRotated.Secret)
		bank := &client{t: t, base: n.URL, token: platformtest.AdminToken, doc: doc}
		var up struct {
			SigningSecret string `json:"signing_secret"`
		}
		bank.do("POST", "/bank/v1/upstreams", "", map[string]any{"name": "Cards", "base_url": hooks.URL, "path_prefix": "cards",
			"scope": "accounts:read"}).decode(t, &up)
		keep("upstream signing secret", strings.TrimPrefix(up.SigningSecret, "whsec_"))

		// An operator's password, second factor, recovery codes and token.
		const operatorPassword = "an operator's own password 9043"
		keep("operator password", operatorPassword)
		var op struct{ ID, Email string }
		bank.do("POST", "/bank/v1/operators", "", map[string]any{"email": "keeper@bank.example", "password": operatorPassword,
			"roles": []string{"admin"}}).decode(t, &op)
		ctx := context.Background()
		enrollment, err := n.Identity.BeginTOTP(ctx, op.ID)
		if err != nil {
			t.Fatal(err)
		}
		keep("TOTP secret", enrollment.Secret)
		code, err := totp.GenerateCode(enrollment.Secret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		recovery, err := n.Identity.ConfirmTOTP(ctx, op.ID, code)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range recovery {
			secrets = append(secrets, strings.ReplaceAll(c, "-", ""))
		}
		operator, err := n.Identity.Operator(ctx, auth.BankProcess(), op.ID)
		if err != nil {
			t.Fatal(err)
		}
		first, err := n.Identity.IssueOperatorToken(ctx, operator.Caller(), "first", nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		var opToken struct{ Token string }
		(&client{t: t, base: n.URL, token: first.Token, doc: doc}).do("POST", "/bank/v1/operator-tokens", "",
			map[string]any{"name": "script"}).decode(t, &opToken)
		keep("operator token", first.Token)
		keep("operator token over HTTP", opToken.Token)

		var dumps []namedDump
		if rt.Name == platformtest.ScaleOut.Name {
			dumps = append(dumps, postgresDumps(t, n)...)
		}
		// Close the node first: SQLite then checkpoints its WAL into the
		// file, and the files hold everything that was written.
		n.Close()
		dumps = append(dumps, dataDirFiles(t, cfg.DataDir)...)
		if rt.Name == platformtest.Embedded.Name && !slices.ContainsFunc(dumps, func(d namedDump) bool {
			return filepath.Base(d.name) == "causeway.db"
		}) {
			t.Fatalf("no causeway.db in %s", cfg.DataDir)
		}
		for _, s := range secrets {
			forms := storedForms(s)
			for _, d := range dumps {
				if i := slices.IndexFunc(forms, func(f string) bool { return bytes.Contains(d.data, []byte(f)) }); i >= 0 {
					t.Errorf("%s holds a secret the API handed out (%.12s…), as %.16q…", d.name, s, forms[i])
				}
			}
		}
	})
}

// namedDump is something a backup would hold.
type namedDump struct {
	name string
	data []byte
}

// dataDirFiles reads every file under dir.
func dataDirFiles(t *testing.T, dir string) []namedDump {
	t.Helper()
	var out []namedDump
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out = append(out, namedDump{name: path, data: b})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// postgresDumps dumps the node's schema: with pg_dump when the machine has
// it, and always as the text of every row of every table.
func postgresDumps(t *testing.T, n *platformtest.Node) []namedDump {
	t.Helper()
	ctx := context.Background()
	var schema string
	if err := n.DB.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	var out []namedDump
	if pgDump, err := exec.LookPath("pg_dump"); err == nil {
		u, err := url.Parse(n.Config.DatabaseURL)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Del("search_path") // a pgx parameter libpq does not know
		u.RawQuery = q.Encode()
		// A pg_dump older than the server refuses to dump it; the rows
		// below are read either way.
		b, err := exec.Command(pgDump, "--data-only", "--schema="+schema, u.String()).Output()
		switch {
		case err != nil:
			t.Logf("pg_dump: %v; reading the rows alone", err)
		case !bytes.Contains(b, []byte("gateway_idempotency")):
			t.Fatalf("pg_dump of schema %s holds no gateway_idempotency", schema)
		default:
			out = append(out, namedDump{name: "pg_dump of " + schema, data: b})
		}
	}
	rows, err := n.DB.QueryContext(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if !slices.Contains(tables, "gateway_idempotency") {
		t.Fatalf("schema %s has no gateway_idempotency: %v", schema, tables)
	}
	for _, table := range tables {
		var buf bytes.Buffer
		func() {
			rows, err := n.DB.QueryContext(ctx, `SELECT r::text FROM `+table+` r`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var row sql.NullString
				if err := rows.Scan(&row); err != nil {
					t.Fatal(err)
				}
				buf.WriteString(row.String + "\n")
			}
		}()
		out = append(out, namedDump{name: "rows of " + schema + "." + table, data: buf.Bytes()})
	}
	return out
}

// storedForms are the texts that would reveal s: s itself, its hex, and
// the middle of its base64 (std, URL, padded or not) at each of the three
// alignments it can have inside a longer base64 text. The middle leaves out
// the first and last group of four characters, which also encode the
// bytes around s.
func storedForms(s string) []string {
	forms := []string{s, hex.EncodeToString([]byte(s))}
	for lead := range 3 {
		b := append(bytes.Repeat([]byte{0}, lead), s...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			e := enc.EncodeToString(b)
			if len(e) > 16 {
				forms = append(forms, e[4:len(e)-4])
			}
		}
	}
	return forms
}
