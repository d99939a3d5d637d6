package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ohtkhub/ohtkhub/internal/djangohash"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// TestAdminOnPostgreSQL runs the administration commands against an api.yaml whose database
// is OHTK's PostgreSQL (a real server, read-only role): API keys go to the api's own schema,
// and OHTK's tenants, users and authorities cannot be created through the api.
func TestAdminOnPostgreSQL(t *testing.T) {
	ctx := t.Context()
	cluster, err := pgtest.Shared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o, err := cluster.CreateOHTK(ctx, "cli_admin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Drop(t.Context()) })
	db, err := o.AddTenant(ctx, "bunny", "Bunny", []string{"bunny.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO accounts_user (password, username, date_joined) VALUES ($1, 'สมชาย', now())`, djangohash.Make("pw", 1000)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "api.yaml")
	if err := os.WriteFile(conf, []byte("data_dir: data\ndatabase: "+o.URL(pgtest.Reader)+"\nprovider:\n  enabled: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(mustRun(t, "apikey", "create", "--config", conf, "--tenant", "bunny", "--username", "สมชาย", "--name", "notebook"))
	sum := sha256.Sum256([]byte(key))
	api, err := o.SchemaDB(ohtkdb.APISchema("bunny"))
	if err != nil {
		t.Fatal(err)
	}
	var user string
	if err := api.QueryRow(`SELECT u.username FROM ohtkhub_apikey k JOIN bunny.accounts_user u ON u.id = k.user_id WHERE k.key_hash = $1`,
		hex.EncodeToString(sum[:])).Scan(&user); err != nil || user != "สมชาย" {
		t.Fatalf("stored key: %q %v", user, err)
	}
	if code, _, errOut := run(t, "tenant", "create", "--config", conf, "--schema", "other", "--name", "Other"); code == 0 || !strings.Contains(errOut, "read-only") {
		t.Errorf("tenant create in OHTK's database: exit %d: %s", code, errOut)
	}
	if code, _, _ := run(t, "user", "create", "--config", conf, "--tenant", "bunny", "--username", "x", "--password", "pw"); code == 0 {
		t.Error("user create wrote OHTK's accounts_user")
	}
}
