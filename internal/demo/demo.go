// Package demo runs the whole system on one machine: the api with its built-in OAuth2
// provider and two seeded tenants, and the hub with the local spawner.
package demo

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/api"
	"github.com/ohtkhub/ohtkhub/internal/config"
	"github.com/ohtkhub/ohtkhub/internal/hub"
	"github.com/ohtkhub/ohtkhub/internal/oauthserver"
	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
	"github.com/ohtkhub/ohtkhub/internal/seed"
)

//go:embed skel
var skel embed.FS

// InstallHint is the command that installs what the demo's notebook servers need.
const InstallHint = "sudo apt-get install -y jupyterhub jupyter-notebook python3-ipykernel python3-pandas python3-matplotlib"

// Password is every demo user's password.
const Password = "ohtk-demo"

// hubClientID is the OAuth client the hub is registered as in every demo tenant.
const hubClientID = "ohtkhub-demo-hub"

// Options configure a demo run.
type Options struct {
	DataDir string
	HubAddr string
	APIAddr string
	// Reports is the number of incident reports seeded per tenant.
	Reports int
	// SingleUser is the single-user server command; empty means jupyterhub-singleuser.
	SingleUser string
	// UIDBase is the local spawner's uid_base (0: its default). Demos side by side on one
	// machine need ranges that do not overlap.
	UIDBase int64
	Logger  *slog.Logger
}

// tenantSpec describes one seeded tenant.
type tenantSpec struct {
	Key, Name string
	RandSeed  int64
}

var tenants = []tenantSpec{
	{Key: "bunny", Name: "Bunny Province", RandSeed: 1},
	{Key: "bon", Name: "Bon Province", RandSeed: 2},
}

// Info is what the demo writes to <data-dir>/demo.json.
type Info struct {
	HubURL  string       `json:"hub_url"`
	APIURL  string       `json:"api_url"`
	Tenants []TenantInfo `json:"tenants"`
}

// TenantInfo describes one demo tenant and its users.
type TenantInfo struct {
	Key    string     `json:"key"`
	Label  string     `json:"label"`
	APIURL string     `json:"api_url"`
	Users  []UserInfo `json:"users"`
}

// UserInfo is one demo login.
type UserInfo struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Role          string `json:"role"`
	IsSuperuser   bool   `json:"is_superuser"`
	AuthorityCode string `json:"authority_code"`
}

// secrets are generated on the first run and kept so a restart keeps sessions and tokens.
type secrets struct {
	ClientSecret string `json:"client_secret"`
	CryptKey     string `json:"crypt_key"`
}

// Demo is a running demo.
type Demo struct {
	Info Info

	api      *api.Server
	hub      *hub.Hub
	apiSrv   *http.Server
	hubSrv   *http.Server
	apiLn    net.Listener
	hubLn    net.Listener
	infoPath string
}

// Start prepares the data directory, seeds the tenants on first use and starts both servers.
func Start(ctx context.Context, opts Options) (*Demo, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if opts.Reports <= 0 {
		opts.Reports = 3000
	}
	single := opts.SingleUser
	if single == "" {
		single = "jupyterhub-singleuser"
	}
	if _, err := exec.LookPath(single); err != nil {
		if _, err2 := os.Stat("/usr/bin/" + single); err2 != nil {
			return nil, fmt.Errorf("%s not found: install it with: %s", single, InstallHint)
		}
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, err
	}
	// Users' servers (under their own uids when the hub runs as root) pass through to
	// hub/users/<user> and hub/python; nothing else here is theirs to read or list.
	if err := os.MkdirAll(dataDir, 0o711); err != nil {
		return nil, err
	}
	if err := os.Chmod(dataDir, 0o711); err != nil {
		return nil, err
	}
	sec, err := loadSecrets(filepath.Join(dataDir, "demo-secrets.json"))
	if err != nil {
		return nil, err
	}

	d := &Demo{infoPath: filepath.Join(dataDir, "demo.json")}
	if d.apiLn, err = net.Listen("tcp", opts.APIAddr); err != nil {
		return nil, fmt.Errorf("api address: %w", err)
	}
	if d.hubLn, err = net.Listen("tcp", opts.HubAddr); err != nil {
		d.apiLn.Close()
		return nil, fmt.Errorf("hub address: %w", err)
	}
	apiURL := "http://" + d.apiLn.Addr().String()
	hubURL := "http://" + d.hubLn.Addr().String() + "/"
	d.Info = Info{HubURL: hubURL, APIURL: apiURL}

	apiCfg := api.DefaultConfig()
	apiCfg.DataDir = filepath.Join(dataDir, "api")
	apiCfg.Listen = d.apiLn.Addr().String()
	apiCfg.Logger = opts.Logger
	if d.api, err = api.New(ctx, apiCfg); err != nil {
		d.closeListeners()
		return nil, fmt.Errorf("api: %w", err)
	}

	skelDir := filepath.Join(dataDir, "skel")
	if err := writeSkel(skelDir); err != nil {
		d.Close(ctx)
		return nil, err
	}
	hubCfg := config.Hub{
		PublicURL: hubURL,
		Listen:    d.hubLn.Addr().String(),
		DataDir:   filepath.Join(dataDir, "hub"),
		CryptKeys: []string{sec.CryptKey},
	}
	hubCfg.Spawner.Kind = "local"
	hubCfg.Spawner.Local.SkeletonDir = skelDir
	hubCfg.Spawner.Local.UIDBase = opts.UIDBase
	if opts.SingleUser != "" {
		hubCfg.Spawner.Local.Command = []string{opts.SingleUser}
	}

	for _, spec := range tenants {
		ti, err := d.prepareTenant(ctx, spec, apiURL, hubURL, sec.ClientSecret, opts.Reports)
		if err != nil {
			d.Close(ctx)
			return nil, fmt.Errorf("tenant %s: %w", spec.Key, err)
		}
		d.Info.Tenants = append(d.Info.Tenants, ti)
		base := ti.APIURL
		hubCfg.Tenants = append(hubCfg.Tenants, config.Tenant{
			Key:                 spec.Key,
			Label:               spec.Name,
			ClientID:            hubClientID,
			ClientSecret:        sec.ClientSecret,
			AuthorizeURL:        base + "/o/authorize/",
			TokenURL:            base + "/o/token/",
			UserinfoURL:         base + "/api/userinfo/",
			APIURL:              base,
			Scopes:              []string{"read"},
			UsernameStripPrefix: spec.Name + "_",
			AllowAll:            true,
			AdminIfSuperuser:    true,
		})
	}
	if err := hubCfg.Validate(); err != nil {
		d.Close(ctx)
		return nil, err
	}
	if d.hub, err = hub.New(ctx, hubCfg, opts.Logger); err != nil {
		d.Close(ctx)
		return nil, fmt.Errorf("hub: %w", err)
	}

	d.apiSrv = &http.Server{Handler: d.api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	d.hubSrv = &http.Server{Handler: d.hub.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go d.apiSrv.Serve(d.apiLn)
	go d.hubSrv.Serve(d.hubLn)

	body, _ := json.MarshalIndent(d.Info, "", "  ")
	if err := writePrivate(d.infoPath, append(body, '\n')); err != nil {
		d.Close(ctx)
		return nil, err
	}
	return d, nil
}

// prepareTenant creates and seeds the tenant on the first run and registers the hub's OAuth client.
func (d *Demo) prepareTenant(ctx context.Context, spec tenantSpec, apiURL, hubURL, clientSecret string, reports int) (TenantInfo, error) {
	st := d.api.Store()
	if _, err := st.TenantBySchema(ctx, spec.Key); errors.Is(err, ohtkdb.ErrNotFound) {
		if _, err := st.CreateTenant(ctx, spec.Key, spec.Name, []string{spec.Key + ".ohtk.localhost"}); err != nil {
			return TenantInfo{}, err
		}
	} else if err != nil {
		return TenantInfo{}, err
	}
	db, err := st.TenantDB(ctx, spec.Key)
	if err != nil {
		return TenantInfo{}, err
	}
	users, err := seed.Tenant(ctx, db, seed.Options{
		TenantName: spec.Name, Reports: reports, RandSeed: spec.RandSeed,
		Password: Password,
	})
	if err != nil {
		return TenantInfo{}, fmt.Errorf("seed: %w", err)
	}
	redirect := []string{hubURL + "hub/" + spec.Key + "/oauth_callback"}
	_, _, err = oauthserver.CreateApplication(ctx, db, oauthserver.Application{
		Name:              "ohtkhub",
		ClientType:        "confidential",
		GrantType:         "authorization-code",
		RedirectURIs:      redirect,
		SkipAuthorization: true,
		ClientID:          hubClientID,
		ClientSecret:      clientSecret,
	})
	if errors.Is(err, ohtkdb.ErrAlreadyExists) {
		// A restart may put the hub on another address.
		err = oauthserver.SetRedirectURIs(ctx, db, hubClientID, redirect)
	}
	if err != nil {
		return TenantInfo{}, fmt.Errorf("oauth application: %w", err)
	}
	ti := TenantInfo{Key: spec.Key, Label: spec.Name, APIURL: apiURL + "/t/" + spec.Key}
	for _, u := range users {
		ti.Users = append(ti.Users, UserInfo{
			Username: u.Username, Password: u.Password, Role: u.Role,
			IsSuperuser: u.IsSuperuser, AuthorityCode: u.AuthorityCode,
		})
	}
	return ti, nil
}

// writePrivate writes a file only the hub's user may read, also when an older one was not.
func writePrivate(path string, body []byte) error {
	if err := os.WriteFile(path, body, 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}

// writeSkel writes the starter files the hub copies into new users' directories.
func writeSkel(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	return fs.WalkDir(skel, "skel", func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		body, err := skel.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, filepath.Base(path)), body, 0o644)
	})
}

func loadSecrets(path string) (secrets, error) {
	var s secrets
	body, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(body, &s); err != nil {
			return s, fmt.Errorf("%s: %w", path, err)
		}
		return s, os.Chmod(path, 0o600)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	s.ClientSecret = rand.Text() + rand.Text()
	key := make([]byte, 32)
	rand.Read(key)
	s.CryptKey = base64.StdEncoding.EncodeToString(key)
	body, _ = json.MarshalIndent(s, "", "  ")
	return s, writePrivate(path, body)
}

func (d *Demo) closeListeners() {
	if d.apiLn != nil {
		d.apiLn.Close()
	}
	if d.hubLn != nil {
		d.hubLn.Close()
	}
}

// Close stops the hub (and its servers) and the api.
func (d *Demo) Close(ctx context.Context) error {
	var errs []error
	if d.hubSrv != nil {
		errs = append(errs, d.hubSrv.Shutdown(ctx))
	}
	if d.hub != nil {
		errs = append(errs, d.hub.Close(ctx))
	}
	if d.apiSrv != nil {
		errs = append(errs, d.apiSrv.Shutdown(ctx))
	}
	if d.api != nil {
		errs = append(errs, d.api.Close())
	}
	d.closeListeners()
	return errors.Join(errs...)
}
