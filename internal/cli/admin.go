package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/api"
	"github.com/ohtkhub/ohtkhub/internal/djangohash"
	"github.com/ohtkhub/ohtkhub/internal/oauthserver"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/seed"
)

// Admin commands write straight into the databases of a data directory, as Django's
// management commands do; they need no running server.

// verb is one action of an admin command ("create").
type verb struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// registerAdmin registers a command whose first argument picks a verb.
func registerAdmin(name, summary string, verbs map[string]verb) {
	register(command{name: name, summary: summary, run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		usage := func(w io.Writer) {
			fmt.Fprintf(w, "usage: ohtkhub %s <verb> [flags]\n\nverbs:\n", name)
			for _, v := range slices.Sorted(mapsKeys(verbs)) {
				fmt.Fprintf(w, "  %-10s %s\n", v, verbs[v].summary)
			}
			fmt.Fprintf(w, "\nRun 'ohtkhub %s <verb> --help' for its flags.\n", name)
		}
		if len(args) == 0 {
			usage(stderr)
			return errUsage
		}
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			usage(stdout)
			return flag.ErrHelp
		}
		v, ok := verbs[args[0]]
		if !ok {
			return fmt.Errorf("unknown verb %q (run 'ohtkhub %s --help')", args[0], name)
		}
		return v.run(ctx, args[1:], stdout, stderr)
	}})
}

func mapsKeys(m map[string]verb) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// dataFlags adds --data-dir and --config to fs; dir returns the data directory they name.
type dataFlags struct{ dataDir, config *string }

func addDataFlags(fs *flag.FlagSet) dataFlags {
	return dataFlags{
		dataDir: fs.String("data-dir", "", "data directory of the api (or use --config)"),
		config:  fs.String("config", "", "api configuration file to read data_dir from"),
	}
}

func (d dataFlags) dir() (string, error) {
	switch {
	case *d.dataDir != "" && *d.config != "":
		return "", errors.New("give --data-dir or --config, not both")
	case *d.dataDir != "":
		return *d.dataDir, nil
	case *d.config != "":
		cfg, err := api.LoadConfig(*d.config)
		if err != nil {
			return "", err
		}
		return cfg.DataDir, nil
	}
	return "", errors.New("--data-dir or --config is required")
}

// open opens the api's store: the one --config selects (possibly OHTK's PostgreSQL
// database), or the SQLite databases of --data-dir.
func (d dataFlags) open(ctx context.Context) (*ohtkdb.Store, error) {
	if *d.config != "" && *d.dataDir == "" {
		cfg, err := api.LoadConfig(*d.config)
		if err != nil {
			return nil, err
		}
		return api.OpenStore(ctx, cfg)
	}
	dir, err := d.dir()
	if err != nil {
		return nil, err
	}
	return ohtkdb.Open(ctx, dir)
}

// tenantDB opens the database of an active tenant.
func tenantDB(ctx context.Context, store *ohtkdb.Store, schema string) (ohtkdb.Tenant, *sql.DB, error) {
	if schema == "" {
		return ohtkdb.Tenant{}, nil, errors.New("--tenant is required")
	}
	t, err := store.TenantBySchema(ctx, schema)
	if errors.Is(err, ohtkdb.ErrNotFound) {
		return ohtkdb.Tenant{}, nil, fmt.Errorf("tenant %q not found", schema)
	}
	if err != nil {
		return ohtkdb.Tenant{}, nil, err
	}
	db, err := store.TenantDB(ctx, schema)
	return t, db, err
}

// required returns an error naming the first empty flag.
func required(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if fs.Lookup(n).Value.String() == "" {
			return fmt.Errorf("--%s is required", n)
		}
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func init() {
	registerAdmin("tenant", "create tenants and their domains", map[string]verb{"create": {"create a tenant", tenantCreate}})
	registerAdmin("authority", "create authorities (a DAG of parents)", map[string]verb{"create": {"create an authority", authorityCreate}})
	registerAdmin("user", "create users with Django password hashes", map[string]verb{"create": {"create a user", userCreate}})
	registerAdmin("app", "register OAuth2 applications of the built-in provider", map[string]verb{"create": {"register an application", appCreate}})
	registerAdmin("apikey", "create Export API keys", map[string]verb{"create": {"create an API key", apikeyCreate}})
	register(command{name: "seed", summary: "fill a tenant with synthetic OHTK data", run: runSeed})
}

func tenantCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tenant create", stdout, stderr, "ohtkhub tenant create --data-dir D --schema S --name N [--domain d1,d2]",
		"Creates a tenant (tenants_client), its domains (tenants_domain) and its database.")
	data := addDataFlags(fs)
	schema := fs.String("schema", "", "schema name: the tenant's stable key, used in /t/{schema}/ and as the hub's tenant key (a-z, 0-9, _; starts with a letter)")
	name := fs.String("name", "", "display name (free text)")
	domains := fs.String("domain", "", "comma-separated domains the tenant answers on (first is primary)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "schema", "name"); err != nil {
		return err
	}
	if err := ohtkdb.CheckNewSchemaName(*schema); err != nil {
		return fmt.Errorf("--schema: %w", err)
	}
	var ds []string
	for _, d := range splitList(*domains) {
		ds = append(ds, ohtkdb.NormalizeHost(d))
	}
	store, err := data.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	t, err := store.CreateTenant(ctx, *schema, *name, ds)
	if errors.Is(err, ohtkdb.ErrAlreadyExists) {
		return fmt.Errorf("--schema: %w", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created tenant %s (id %d)\n", t.SchemaName, t.ID)
	return nil
}

func authorityCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("authority create", stdout, stderr, "ohtkhub authority create --tenant S --code C --name N [--parent CODE,...]",
		"Creates an authority; each parent adds an edge of the authority DAG (accounts_authority_inherits).")
	data := addDataFlags(fs)
	schema := fs.String("tenant", "", "tenant schema name")
	code := fs.String("code", "", "authority code (unique, up to 20 characters)")
	name := fs.String("name", "", "authority name")
	parents := fs.String("parent", "", "comma-separated codes of parent authorities")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "tenant", "code", "name"); err != nil {
		return err
	}
	if len(*code) > 20 {
		return fmt.Errorf("--code %q: at most 20 characters", *code)
	}
	store, err := data.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	_, db, err := tenantDB(ctx, store, *schema)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM accounts_authority WHERE code = $1`, *code).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("authority %q already exists", *code)
	}
	now := ohtkdb.FormatTime(time.Now())
	res, err := tx.ExecContext(ctx, `INSERT INTO accounts_authority (code, name, created_at, updated_at) VALUES ($1, $2, $3, $3)`, *code, *name, now)
	if err != nil {
		return err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return err
	}
	for _, p := range splitList(*parents) {
		var pid int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM accounts_authority WHERE code = $1 AND deleted_at IS NULL`, p).Scan(&pid)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("parent authority %q not found", p)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO accounts_authority_inherits (from_authority_id, to_authority_id) VALUES ($1, $2)`, id, pid); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created authority %s (id %d)\n", *code, id)
	return nil
}

func userCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("user create", stdout, stderr, "ohtkhub user create --tenant S --username U --password-stdin|--password P [--authority CODE --role ADM|OFC|REP] [--superuser]",
		"Creates a user (accounts_user) with a Django pbkdf2_sha256 password hash; with --authority also\nits accounts_authorityuser row.")
	data := addDataFlags(fs)
	schema := fs.String("tenant", "", "tenant schema name")
	username := fs.String("username", "", "username (case-sensitive, any Unicode)")
	password := fs.String("password", "", "password (visible in the process list: prefer --password-stdin)")
	passwordStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	authority := fs.String("authority", "", "code of the user's authority (makes an authority user)")
	role := fs.String("role", "REP", "role in the authority: ADM, OFC or REP")
	superuser := fs.Bool("superuser", false, "make the user a superuser")
	email := fs.String("email", "", "e-mail address")
	first := fs.String("first-name", "", "first name")
	last := fs.String("last-name", "", "last name")
	iterations := fs.Int("iterations", djangohash.DefaultIterations, "pbkdf2_sha256 iterations of the password hash")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "tenant", "username"); err != nil {
		return err
	}
	if *passwordStdin == (*password != "") {
		return errors.New("give exactly one of --password-stdin and --password")
	}
	if *passwordStdin {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read password: %w", err)
		}
		*password = strings.TrimRight(line, "\r\n")
		if *password == "" {
			return errors.New("empty password on standard input")
		}
	}
	if !slices.Contains([]string{"ADM", "OFC", "REP"}, *role) {
		return fmt.Errorf("--role %q: want ADM, OFC or REP", *role)
	}
	if *iterations < 1 {
		return errors.New("--iterations must be positive")
	}
	store, err := data.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	_, db, err := tenantDB(ctx, store, *schema)
	if err != nil {
		return err
	}
	hash := djangohash.Make(*password, *iterations)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM accounts_user WHERE username = $1`, *username).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("user %q already exists", *username)
	}
	var authorityID int64
	if *authority != "" {
		err := tx.QueryRowContext(ctx, `SELECT id FROM accounts_authority WHERE code = $1 AND deleted_at IS NULL`, *authority).Scan(&authorityID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("authority %q not found", *authority)
		}
		if err != nil {
			return err
		}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
		VALUES ($1, $2, $3, $4, $5, $6, $2, 1, $7)`, hash, *superuser, *username, *first, *last, *email, ohtkdb.FormatTime(time.Now()))
	if err != nil {
		return err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return err
	}
	if authorityID != 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO accounts_authorityuser (user_ptr_id, authority_id, role) VALUES ($1, $2, $3)`, id, authorityID, *role); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created user %s (id %d)\n", *username, id)
	return nil
}

func appCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("app create", stdout, stderr, "ohtkhub app create --tenant S --name N --redirect-uri URI [--public] [--skip-authorization] [--grant authorization-code]",
		"Registers an OAuth2 application (oauth2_provider_application) and prints its client id and\nsecret. The secret is shown only this once; a Django hash of it is stored.")
	data := addDataFlags(fs)
	schema := fs.String("tenant", "", "tenant schema name")
	name := fs.String("name", "", "application name shown on the consent page")
	redirects := fs.String("redirect-uri", "", "comma-separated redirect URIs (exact match)")
	public := fs.Bool("public", false, "public client (no secret; use PKCE)")
	skip := fs.Bool("skip-authorization", false, "skip the consent page")
	grant := fs.String("grant", oauthserver.GrantAuthorizationCode, "grant type: authorization-code, password or client-credentials")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "tenant", "name"); err != nil {
		return err
	}
	store, err := data.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	_, db, err := tenantDB(ctx, store, *schema)
	if err != nil {
		return err
	}
	app := oauthserver.Application{Name: *name, GrantType: *grant, RedirectURIs: splitList(*redirects), SkipAuthorization: *skip,
		ClientType: oauthserver.ClientConfidential}
	if *public {
		app.ClientType = oauthserver.ClientPublic
	}
	id, secret, err := oauthserver.CreateApplication(ctx, db, app)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "client_id: %s\n", id)
	if secret != "" {
		fmt.Fprintf(stdout, "client_secret: %s\n", secret)
		fmt.Fprintln(stderr, "The client secret is shown only now: store it safely.")
	}
	return nil
}

// apiKeyChars is the alphabet of API keys (base62).
const apiKeyChars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newAPIKey returns "ohtk_" and 40 random base62 characters.
func newAPIKey() string {
	b := make([]byte, 0, 45)
	b = append(b, "ohtk_"...)
	var buf [64]byte
	for len(b) < 45 {
		rand.Read(buf[:])
		for _, c := range buf {
			if c < 248 && len(b) < 45 { // 248 = 4*62 keeps the draw uniform
				b = append(b, apiKeyChars[c%62])
			}
		}
	}
	return string(b)
}

func apikeyCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("apikey create", stdout, stderr, "ohtkhub apikey create --tenant S --username U --name N [--expires 2160h]",
		"Creates an Export API key for HTTP Basic (username:key) and prints it. The key is shown only\nthis once; its sha256 is stored.")
	data := addDataFlags(fs)
	schema := fs.String("tenant", "", "tenant schema name")
	username := fs.String("username", "", "user the key acts as")
	name := fs.String("name", "", "what the key is for")
	expires := fs.Duration("expires", 0, "lifetime of the key (e.g. 2160h); 0 means no expiry")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "tenant", "username", "name"); err != nil {
		return err
	}
	if *expires < 0 {
		return errors.New("--expires must not be negative")
	}
	store, err := data.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	_, db, err := tenantDB(ctx, store, *schema)
	if err != nil {
		return err
	}
	var userID int64
	err = db.QueryRowContext(ctx, `SELECT id FROM accounts_user WHERE username = $1`, *username).Scan(&userID)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("user %q not found", *username)
	}
	if err != nil {
		return err
	}
	key := newAPIKey()
	sum := sha256.Sum256([]byte(key))
	now := time.Now()
	var exp any
	if *expires > 0 {
		exp = ohtkdb.FormatTime(now.Add(*expires))
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO ohtkhub_apikey (user_id, name, prefix, key_hash, created, expires) VALUES ($1, $2, $3, $4, $5, $6)`,
		userID, *name, key[:12], hex.EncodeToString(sum[:]), ohtkdb.FormatTime(now), exp); err != nil {
		return err
	}
	fmt.Fprintln(stdout, key)
	fmt.Fprintln(stderr, "The key is shown only now: store it safely.")
	return nil
}

func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("seed", stdout, stderr, "ohtkhub seed --data-dir D --tenant S [--reports N] [--password P|--password-stdin]",
		"Fills a tenant with synthetic OHTK data: an authority tree with Thai names, users of every role,\nreport types using every form field type, incident and zero reports.")
	data := addDataFlags(fs)
	schema := fs.String("tenant", "", "tenant schema name")
	reports := fs.Int("reports", 3000, "incident reports to write")
	zero := fs.Int("zero-reports", 500, "zero reports to write")
	randSeed := fs.Int64("rand-seed", 1, "seed of the generator (same seed, same data)")
	password := fs.String("password", "", "password of every seeded user (default: a random one, printed)")
	passwordStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	iterations := fs.Int("iterations", djangohash.DefaultIterations, "pbkdf2_sha256 iterations of the password hashes")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "tenant"); err != nil {
		return err
	}
	if *passwordStdin && *password != "" {
		return errors.New("give at most one of --password-stdin and --password")
	}
	generated := false
	switch {
	case *passwordStdin:
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read password: %w", err)
		}
		*password = strings.TrimRight(line, "\r\n")
		if *password == "" {
			return errors.New("empty password on standard input")
		}
	case *password == "":
		// No well-known default: seeded tenants may be reachable by others.
		*password = newAPIKey()[5:21]
		generated = true
	}
	if *reports < 0 || *zero < 0 {
		return errors.New("--reports and --zero-reports must not be negative")
	}
	// seed.Options reads 0 as "default" and a negative count as "none".
	nr, nz := *reports, *zero
	if nr == 0 {
		nr = -1
	}
	if nz == 0 {
		nz = -1
	}
	store, err := data.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	t, db, err := tenantDB(ctx, store, *schema)
	if err != nil {
		return err
	}
	// Tenant leaves a tenant with users alone; say so rather than print logins that were not made.
	if seeded, err := seed.Seeded(ctx, db); err != nil {
		return err
	} else if seeded {
		return fmt.Errorf("tenant %s already has users: nothing written (seed fills an empty tenant)", t.SchemaName)
	}
	users, err := seed.Tenant(ctx, db, seed.Options{TenantName: t.Name, Reports: nr, ZeroReports: nz,
		RandSeed: *randSeed, Password: *password, Iterations: *iterations})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded tenant %s: %d incident reports, %d zero reports; logins:\n", t.SchemaName, *reports, *zero)
	if generated {
		fmt.Fprintf(stdout, "  (every seeded user's password: %s)\n", *password)
	}
	printLogins(stdout, users)
	return nil
}

// printLogins lists seeded users, a line each: username, role (and superuser), authority code.
func printLogins(w io.Writer, users []seed.User) {
	for _, u := range users {
		role := u.Role
		if u.IsSuperuser {
			role = strings.TrimSpace(role + " superuser")
		}
		fmt.Fprintf(w, "  %-16s %-18s %s\n", u.Username, role, u.AuthorityCode)
	}
}
