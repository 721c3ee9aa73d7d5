package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/causewayhq/causeway/internal/httpapi"
)

// newOperatorCommand is `causeway operator`: the bank's operators, from
// the command line.
func newOperatorCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Manage the bank's operators (named staff with roles)",
	}
	cmd.AddCommand(newOperatorCreateCommand())
	return cmd
}

// operatorCreateCLI is `causeway operator create`'s flags.
type operatorCreateCLI struct {
	server, adminToken, dataDir string
	email, name                 string
	roles                       []string
	passwordStdin               bool
}

// newOperatorCreateCommand is `causeway operator create`: the first
// operator of a new installation, made with the admin token.
func newOperatorCreateCommand() *cobra.Command {
	var c operatorCreateCLI
	cmd := &cobra.Command{
		Use:   "create --email ana@bank.example --role admin",
		Short: "Create an operator on a running node, with the bank's admin token",
		Long: `Create a named bank operator on a running node (--server), with the bank's
admin token: --admin-token, CAUSEWAY_ADMIN_TOKEN, or <data-dir>/admin-token
of an embedded node. This is how an installation gets its first operator;
after that, admins create operators in the console or with
POST /bank/v1/operators.

The password is read from standard input with --password-stdin; otherwise a
random one is generated and printed once. The operator enrolls a second
factor (TOTP) at first login to the console.`,
		Example: `  causeway operator create --email ana@bank.example --name "Ana Lima" --role admin
  printf '%s' "$PASSWORD" | causeway operator create --email bo@bank.example --role risk-officer --password-stdin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&c.server, "server", "http://localhost:8080", "the node's base URL")
	f.StringVar(&c.adminToken, "admin-token", "", "the bank's admin token (env CAUSEWAY_ADMIN_TOKEN); empty reads <data-dir>/admin-token")
	f.StringVar(&c.dataDir, "data-dir", "causeway-data", "the embedded node's data directory, for its admin-token file")
	f.StringVar(&c.email, "email", "", "the operator's email address")
	f.StringVar(&c.name, "name", "", "the operator's display name (default: the email)")
	f.StringSliceVar(&c.roles, "role", nil, "a role: viewer, app-manager, risk-officer, data-steward or admin (repeat, or comma-separate)")
	f.BoolVar(&c.passwordStdin, "password-stdin", false, "read the password from standard input instead of generating one")
	return cmd
}

// run creates the operator and prints it, with the password when it was
// generated here.
func (c *operatorCreateCLI) run(cmd *cobra.Command) error {
	if err := envDefaults(cmd.Flags()); err != nil {
		return err
	}
	if c.email == "" || len(c.roles) == 0 {
		return errors.New("--email and at least one --role are required")
	}
	token, err := c.token()
	if err != nil {
		return err
	}
	password, generated := "", false
	if c.passwordStdin {
		raw, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1025))
		if err != nil {
			return err
		}
		password = strings.TrimRight(string(raw), "\r\n")
	} else {
		password, generated = rand.Text(), true
	}
	var op struct {
		ID    string   `json:"id"`
		Email string   `json:"email"`
		Roles []string `json:"roles"`
	}
	if err := c.create(cmd.Context(), token, password, &op); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "operator %s created: %s, roles %s\n", op.ID, op.Email, strings.Join(op.Roles, ", "))
	if generated {
		fmt.Fprintf(out, "password (shown once; change it after the first login): %s\n", password)
	}
	fmt.Fprintf(out, "log in at %s/console/login and enroll a second factor\n", strings.TrimRight(c.server, "/"))
	return nil
}

// token is --admin-token, or else the one in <data-dir>/admin-token; of a
// "NEW,OLD" pair during a rotation, the first, which is current.
func (c *operatorCreateCLI) token() (string, error) {
	token := c.adminToken
	if token == "" {
		raw, err := os.ReadFile(filepath.Join(c.dataDir, "admin-token"))
		if err != nil {
			return "", fmt.Errorf("no --admin-token given and %w", err)
		}
		token = strings.TrimSpace(string(raw))
	}
	tokens := httpapi.AdminTokens(token)
	if len(tokens) == 0 {
		return "", errors.New("the admin token is empty")
	}
	return tokens[0], nil
}

// create asks the node for the operator and reads its answer into op.
func (c *operatorCreateCLI) create(ctx context.Context, token, password string, op any) error {
	body, _ := json.Marshal(map[string]any{"email": c.email, "display_name": c.name, "password": password, "roles": splitList(c.roles)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.server, "/")+"/bank/v1/operators", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		var p struct{ Code, Detail string }
		_ = json.Unmarshal(answer, &p)
		return fmt.Errorf("%s answered %s: %s (%s)", c.server, resp.Status, p.Detail, p.Code)
	}
	return json.Unmarshal(answer, op)
}
