package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/djangohash"
	"github.com/ohtkhub/ohtkhub/internal/oauthserver"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/seed"
)

// setup does in one idempotent step what "Run api and hub yourself" does by hand (tenant
// create, seed, app create, copying the secrets into hub.yaml), for deployments where no
// shell runs between the commands: an image with nothing but the binary, a one-shot
// container before the api and the hub start.

func init() {
	register(command{name: "setup", summary: "create the hub's tenants in the api, register the hub with each, write hub.yaml", run: runSetup})
}

// defaultClientID is the hub's client id at tenants whose template entry names none.
const defaultClientID = "ohtkhub"

func runSetup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("setup", stdout, stderr, "ohtkhub setup --config api.yaml --hub-template hub.yaml --hub-config out/hub.yaml [--reports N]",
		"For every tenant of the hub template: creates it in the api's data (schema = the tenant's key,\n"+
			"name = its label) if missing, seeds it if it has no users, and registers the hub as its OAuth\n"+
			"application (redirect URI <public_url>hub/<key>/oauth_callback, no consent page). Then writes\n"+
			"the template to --hub-config with each tenant's client_secret and a crypt key filled in.\n"+
			"Running it again keeps the secrets, the tenants and their users, and follows a changed\n"+
			"public_url.")
	data := addDataFlags(fs)
	template := fs.String("hub-template", "", "hub configuration to start from; ${VAR} and ${VAR:-default} in its values come from the environment")
	out := fs.String("hub-config", "", "hub configuration to write (kept secrets are read back from it)")
	doSeed := fs.Bool("seed", true, "fill a tenant without users with synthetic data and print its logins")
	reports := fs.Int("reports", 3000, "incident reports to seed per tenant")
	iterations := fs.Int("iterations", djangohash.DefaultIterations, "pbkdf2_sha256 iterations of the seeded users' password hashes")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "hub-template", "hub-config"); err != nil {
		return err
	}
	if *reports < 0 {
		return errors.New("--reports must not be negative")
	}
	prev, err := readKept(*out)
	if err != nil {
		return err
	}
	body, err := renderHubConfig(*template, prev, os.LookupEnv)
	if err != nil {
		return err
	}
	// The configuration is checked where it will live (its relative paths are relative to
	// it) before anything is changed in the api.
	if err := os.MkdirAll(filepath.Dir(*out), 0o700); err != nil {
		return err
	}
	tmp := *out + ".new"
	if err := os.WriteFile(tmp, body, 0o600); err != nil {
		return err
	}
	defer os.Remove(tmp)
	cfg, err := config.Load(tmp)
	if err != nil {
		// The template is the file to fix.
		return errors.New(strings.ReplaceAll(err.Error(), tmp, *template))
	}

	store, err := data.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	for _, t := range cfg.Tenants {
		if err := setupTenant(ctx, store, cfg.PublicURL, t, *doSeed, *reports, *iterations, stdout); err != nil {
			return fmt.Errorf("tenant %s: %w", t.Key, err)
		}
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: hub at %s\n", *out, cfg.PublicURL)
	return nil
}

// kept is what a previous run wrote and the next run keeps.
type kept struct {
	CryptKeys []string `yaml:"crypt_keys"`
	Tenants   []struct {
		Key          string `yaml:"key"`
		ClientID     string `yaml:"client_id"`
		ClientSecret string `yaml:"client_secret"`
	} `yaml:"tenants"`
}

func readKept(path string) (kept, error) {
	var k kept
	body, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return k, nil
	}
	if err != nil {
		return k, err
	}
	if err := yaml.Unmarshal(body, &k); err != nil {
		return k, fmt.Errorf("%s: %v", path, err)
	}
	return k, nil
}

func (k kept) secret(key, clientID string) string {
	for _, t := range k.Tenants {
		if t.Key == key && t.ClientID == clientID {
			return t.ClientSecret
		}
	}
	return ""
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// renderHubConfig reads the template, expands ${VAR} and ${VAR:-default} in its values, and
// fills in what it leaves out: a crypt key, and per tenant the client id and secret. Kept
// secrets (and keys) of a previous run win over new ones. Comments stay.
func renderHubConfig(path string, prev kept, lookup func(string) (string, bool)) ([]byte, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a YAML mapping", path)
	}
	var missing []string
	var expand func(n *yaml.Node)
	expand = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
			n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
				m := envRef.FindStringSubmatch(ref)
				if v, ok := lookup(m[1]); ok && v != "" {
					return v
				}
				if m[2] == "" {
					missing = append(missing, m[1])
				}
				return m[3]
			})
			// The value is read as if written in the file: plain 60 is a number, "60" a string.
			n.Tag = ""
		}
		for _, c := range n.Content {
			expand(c)
		}
	}
	root := doc.Content[0]
	expand(root)
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: environment variable %s is not set", path, missing[0])
	}

	if keys := field(root, "crypt_keys"); keys == nil || len(keys.Content) == 0 {
		cryptKeys := prev.CryptKeys
		if len(cryptKeys) == 0 {
			k := make([]byte, 32)
			rand.Read(k)
			cryptKeys = []string{base64.StdEncoding.EncodeToString(k)}
		}
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, k := range cryptKeys {
			seq.Content = append(seq.Content, str(k))
		}
		set(root, "crypt_keys", seq)
	}
	if tenants := field(root, "tenants"); tenants != nil {
		for _, t := range tenants.Content {
			if t.Kind != yaml.MappingNode {
				continue
			}
			key := ""
			if k := field(t, "key"); k != nil {
				key = k.Value
			}
			id := field(t, "client_id")
			if id == nil || id.Value == "" {
				id = str(defaultClientID)
				set(t, "client_id", id)
			}
			if s := field(t, "client_secret"); s == nil || s.Value == "" {
				secret := prev.secret(key, id.Value)
				if secret == "" {
					secret = rand.Text() + rand.Text()
				}
				set(t, "client_secret", str(secret))
			}
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by `ohtkhub setup` from %s: edit that file, not this one.\n"+
		"# The crypt keys and client secrets below are kept when it runs again.\n", path)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	enc.Close()
	return b.Bytes(), nil
}

// field returns the value of key in mapping m, or nil.
func field(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// set sets key in mapping m to v, appending it when missing.
func set(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, str(key), v)
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// setupTenant creates the tenant if missing, seeds it if it has no users and registers the
// hub's client with the secret from the hub configuration.
func setupTenant(ctx context.Context, store *ohtkdb.Store, hubURL string, t config.Tenant, doSeed bool, reports, iterations int, stdout io.Writer) error {
	ten, err := store.TenantBySchema(ctx, t.Key)
	if errors.Is(err, ohtkdb.ErrNotFound) {
		if ten, err = store.CreateTenant(ctx, t.Key, t.Label, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created tenant %s (%s)\n", ten.SchemaName, ten.Name)
	} else if err != nil {
		return err
	}
	if want := ten.Name + "_"; t.UsernameStripPrefix != want {
		fmt.Fprintf(stdout, "warning: tenant %s: username_strip_prefix is %q; the tenant's userinfo names users %q…\n", t.Key, t.UsernameStripPrefix, want)
	}
	db, err := store.TenantDB(ctx, t.Key)
	if err != nil {
		return err
	}
	if doSeed {
		if err := seedIfEmpty(ctx, db, ten, reports, iterations, stdout); err != nil {
			return err
		}
	}
	redirect := []string{hubURL + "hub/" + t.Key + "/oauth_callback"}
	_, _, err = oauthserver.CreateApplication(ctx, db, oauthserver.Application{
		Name: "ohtkhub", ClientType: oauthserver.ClientConfidential, GrantType: oauthserver.GrantAuthorizationCode,
		RedirectURIs: redirect, SkipAuthorization: true, ClientID: t.ClientID, ClientSecret: t.ClientSecret,
	})
	if errors.Is(err, ohtkdb.ErrAlreadyExists) {
		// The hub may have moved, or its configuration (and the secret with it) been lost.
		if err = oauthserver.SetRedirectURIs(ctx, db, t.ClientID, redirect); err == nil {
			err = oauthserver.SetClientSecret(ctx, db, t.ClientID, t.ClientSecret)
		}
	}
	if err != nil {
		return fmt.Errorf("oauth application: %w", err)
	}
	fmt.Fprintf(stdout, "tenant %s: hub registered as client %s, redirect URI %s\n", t.Key, t.ClientID, redirect[0])
	return nil
}

// seedIfEmpty seeds a tenant that has no users with one random password for all of them and
// prints the logins; the password is not stored anywhere else.
func seedIfEmpty(ctx context.Context, db *sql.DB, ten ohtkdb.Tenant, reports, iterations int, stdout io.Writer) error {
	if seeded, err := seed.Seeded(ctx, db); err != nil {
		return err
	} else if seeded {
		fmt.Fprintf(stdout, "tenant %s has users: not seeded again\n", ten.SchemaName)
		return nil
	}
	password := newAPIKey()[5:21]
	nr := reports
	if nr == 0 {
		nr = -1 // seed.Options reads 0 as "default"
	}
	users, err := seed.Tenant(ctx, db, seed.Options{TenantName: ten.Name, Reports: nr, RandSeed: ten.ID,
		Password: password, Iterations: iterations})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded tenant %s: %d incident reports; every seeded user's password: %s\n", ten.SchemaName, reports, password)
	printLogins(stdout, users)
	return nil
}
