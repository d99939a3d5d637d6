// Package seed writes realistic synthetic OHTK data into a tenant's database: an authority
// DAG with Thai names, officers, admins, reporters and a superuser, report types whose forms
// use every field type OHTK knows, and a year of incident, follow-up and zero reports.
//
// Everything is drawn from a generator seeded with Options.RandSeed, so two databases seeded
// with the same options (and the same Now) hold the same rows, apart from password salts.
//
// The logins (Tenant's result) get the password of Options.Password, hashed as Django
// hashes it: pbkdf2_sha256 with Django's iteration count and a salt of their own. The
// village volunteers, who are not logins of the demo, get unusable passwords (Django's
// set_unusable_password), so seeding costs a handful of hashes, not one per volunteer.
package seed

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/ohtkhub/ohtkhub/internal/ohtkdb"
)

// Options say how much to seed.
type Options struct {
	// TenantName is the tenant's display name; it shapes the users' e-mail domain.
	TenantName string
	// Reports and ZeroReports are how many incident and zero reports to write
	// (defaults 3000 and 500; a negative number means none).
	Reports, ZeroReports int
	// RandSeed makes the data reproducible and picks the province of the authority tree:
	// Chiang Mai for even seeds, Khon Kaen for odd ones.
	RandSeed int64
	// Password is the password of every seeded login.
	Password string
	// Iterations is the pbkdf2_sha256 work factor of the stored hashes (Django's default,
	// djangohash.DefaultIterations, when 0). Tests may lower it; a tenant served to people
	// should keep the default, which is what its real users' hashes cost.
	Iterations int
	// Now anchors the year of reports; zero means today (UTC midnight), so reseeding on the
	// same day gives the same rows.
	Now time.Time
}

// User is a seeded login.
type User struct {
	Username, Password, Role string
	IsSuperuser              bool
	// AuthorityCode is the code of the user's authority, "" for a plain superuser.
	AuthorityCode string
}

// Roles of accounts_authorityuser.role.
const (
	RoleReporter = "REP"
	RoleOfficer  = "OFC"
	RoleAdmin    = "ADM"
)

var bangkok = time.FixedZone("ICT", 7*3600)

// staff are the accounts every tenant gets under the same usernames. level picks the
// authority: "province", or a district/subdistrict by index into the province's tree.
type staffAccount struct {
	username, first, last, role string
	superuser, active           bool
	district, subdistrict       int // -1: province level; subdistrict -1: the district itself
	login                       bool
}

var staff = []staffAccount{
	{username: "admin", first: "Admin", last: "OHTK", superuser: true, active: true, login: true},
	{username: "alice", first: "Alice", last: "Wongsawat", role: RoleAdmin, active: true, district: 0, subdistrict: -1, login: true},
	{username: "oscar", first: "Oscar", last: "Thongchai", role: RoleOfficer, active: true, district: 1, subdistrict: -1, login: true},
	{username: "rita", first: "Rita", last: "Kaewmanee", role: RoleReporter, active: true, district: 0, subdistrict: 3, login: true},
	{username: "สมชาย ใจดี", first: "สมชาย", last: "ใจดี", role: RoleOfficer, active: true, district: 2, subdistrict: -1, login: true},
	{username: "pravit", first: "ประวิทย์", last: "ปศุสัตว์จังหวัด", role: RoleAdmin, active: true, district: -1, login: true},
	{username: "former.officer", first: "วันชัย", last: "ย้ายออก", role: RoleOfficer, active: false, district: 3, subdistrict: -1},
}

// Tenant seeds the tenant database db and returns the logins it can be used with. If db
// already has users it writes nothing and returns the same logins, so restarting a demo keeps
// its data.
func Tenant(ctx context.Context, db *sql.DB, opts Options) ([]User, error) {
	if opts.Password == "" {
		return nil, errors.New("seed: a password is required")
	}
	switch {
	case opts.Reports == 0:
		opts.Reports = 3000
	case opts.Reports < 0:
		opts.Reports = 0
	}
	switch {
	case opts.ZeroReports == 0:
		opts.ZeroReports = 500
	case opts.ZeroReports < 0:
		opts.ZeroReports = 0
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now().UTC().Truncate(24 * time.Hour)
	}
	r := rand.New(rand.NewPCG(uint64(opts.RandSeed), 0x6f68746b))
	prov := provinces[uint64(opts.RandSeed)%uint64(len(provinces))]

	if seeded, err := Seeded(ctx, db); err != nil {
		return nil, err
	} else if seeded {
		return existingUsers(ctx, db, opts.Password)
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	defer tx.Rollback()
	s := &seeder{ctx: ctx, tx: tx, r: r, opts: opts, prov: prov, hashes: makeHashes(opts.Password, opts.Iterations, len(staff))}
	users, err := s.run()
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	return users, nil
}

// Seeded reports whether the tenant database db has users already, which Tenant leaves alone.
func Seeded(ctx context.Context, db *sql.DB) (bool, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM accounts_user`).Scan(&n); err != nil {
		return false, fmt.Errorf("seed: %w", err)
	}
	return n > 0, nil
}

// existingUsers reads the seeded logins back from a database seeded earlier.
func existingUsers(ctx context.Context, db *sql.DB, password string) ([]User, error) {
	var out []User
	for _, a := range staff {
		if !a.login {
			continue
		}
		u := User{Username: a.username, Password: password}
		var super bool
		var role, code sql.NullString
		err := db.QueryRowContext(ctx, `SELECT u.is_superuser, au.role, a.code FROM accounts_user u
			LEFT JOIN accounts_authorityuser au ON au.user_ptr_id = u.id
			LEFT JOIN accounts_authority a ON a.id = au.authority_id
			WHERE u.username = $1`, a.username).Scan(&super, &role, &code)
		if errors.Is(err, sql.ErrNoRows) {
			continue // a database seeded by something else: report only what is there
		}
		if err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
		u.IsSuperuser, u.Role, u.AuthorityCode = super, role.String, code.String
		out = append(out, u)
	}
	return out, nil
}

type seeder struct {
	ctx  context.Context
	tx   *sql.Tx
	r    *rand.Rand
	opts Options
	prov province
	// hashes are the password hashes of the staff accounts, one salt each.
	hashes []string

	authorityID map[string]int64    // code → id
	parents     map[string][]string // code → parent codes
	places      []seededPlace       // subdistricts, in tree order
	reporters   []reporter
	types       []seededType
}

type seededPlace struct {
	place
	district int
}

type reporter struct {
	id    int64
	place int // index into places
}

type seededType struct {
	reportType
	id               string
	defJSON, oldJSON string
}

func (s *seeder) exec(query string, args ...any) (sql.Result, error) {
	return s.tx.ExecContext(s.ctx, query, args...)
}

func (s *seeder) run() ([]User, error) {
	if err := s.authorities(); err != nil {
		return nil, err
	}
	users, err := s.users()
	if err != nil {
		return nil, err
	}
	if err := s.reportTypes(); err != nil {
		return nil, err
	}
	if err := s.reports(); err != nil {
		return nil, err
	}
	if err := s.zeroReports(); err != nil {
		return nil, err
	}
	return users, nil
}

func (s *seeder) authorities() error {
	created := ohtkdb.FormatTime(s.opts.Now.AddDate(-2, 0, 0))
	s.authorityID = map[string]int64{}
	s.parents = map[string][]string{}
	add := func(code, name string) error {
		var id int64
		err := s.tx.QueryRowContext(s.ctx, `INSERT INTO accounts_authority (code, name, created_at, updated_at) VALUES ($1, $2, $3, $3) RETURNING id`,
			code, name, created).Scan(&id)
		if err != nil {
			return fmt.Errorf("authority %s: %w", code, err)
		}
		s.authorityID[code] = id
		return nil
	}
	link := func(child, parent string) error {
		s.parents[child] = append(s.parents[child], parent)
		_, err := s.exec(`INSERT INTO accounts_authority_inherits (from_authority_id, to_authority_id) VALUES ($1, $2)`,
			s.authorityID[child], s.authorityID[parent])
		return err
	}
	if err := add(s.prov.code, s.prov.name); err != nil {
		return err
	}
	for di, d := range s.prov.districts {
		if err := add(d.code, d.name); err != nil {
			return err
		}
		if err := link(d.code, s.prov.code); err != nil {
			return err
		}
		for _, p := range d.subdistrict {
			if err := add(p.code, p.name); err != nil {
				return err
			}
			if err := link(p.code, d.code); err != nil {
				return err
			}
			s.places = append(s.places, seededPlace{place: p, district: di})
		}
	}
	return link(s.prov.shared.subdistrict, s.prov.shared.alsoUnder)
}

// ancestors returns code and every authority above it, each once, nearest first.
func (s *seeder) ancestors(code string) []string {
	out := []string{code}
	seen := map[string]bool{code: true}
	for i := 0; i < len(out); i++ {
		for _, p := range s.parents[out[i]] {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

func (s *seeder) emailDomain() string {
	var b strings.Builder
	for _, c := range strings.ToLower(s.opts.TenantName) {
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			b.WriteRune(c)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	slug := strings.Trim(b.String(), "-")
	if slug == "" {
		slug = "tenant"
	}
	return slug + ".example.org"
}

func (s *seeder) phone() string {
	return fmt.Sprintf("0%d%08d", 6+s.r.IntN(4), s.r.IntN(100000000))
}

func (s *seeder) address(p seededPlace) string {
	d := s.prov.districts[p.district]
	return fmt.Sprintf("%d หมู่ %d %s %s %s %s", 1+s.r.IntN(250), 1+s.r.IntN(12),
		strings.Replace(p.name, "ตำบล", "ต.", 1), strings.Replace(d.name, "อำเภอ", "อ.", 1),
		strings.Replace(s.prov.name, "จังหวัด", "จ.", 1), s.prov.postcode)
}

func (s *seeder) users() ([]User, error) {
	insUser, err := s.tx.PrepareContext(s.ctx, `INSERT INTO accounts_user
		(password, last_login, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`)
	if err != nil {
		return nil, err
	}
	defer insUser.Close()
	insAU, err := s.tx.PrepareContext(s.ctx, `INSERT INTO accounts_authorityuser
		(user_ptr_id, authority_id, role, telephone, address, consent) VALUES ($1, $2, $3, $4, $5, $6)`)
	if err != nil {
		return nil, err
	}
	defer insAU.Close()

	domain := s.emailDomain()
	joined := func() string {
		return ohtkdb.FormatTime(s.opts.Now.AddDate(0, -13-s.r.IntN(11), -s.r.IntN(28)).Add(time.Duration(s.r.IntN(86400)) * time.Second))
	}
	lastLogin := func() any {
		if s.r.IntN(5) == 0 {
			return nil
		}
		return ohtkdb.FormatTime(s.opts.Now.Add(-time.Duration(s.r.IntN(90*86400)) * time.Second))
	}
	add := func(hash, username, first, last, email string, super, active bool) (int64, error) {
		var id int64
		err := insUser.QueryRowContext(s.ctx, hash, lastLogin(), super, username, first, last, email, super, active, joined()).Scan(&id)
		if err != nil {
			return 0, fmt.Errorf("user %q: %w", username, err)
		}
		return id, nil
	}

	var out []User
	for i, a := range staff {
		email := strings.ReplaceAll(a.username, " ", ".") + "@" + domain
		if !isASCII(a.username) {
			email = "somchai.j@" + domain
		}
		id, err := add(s.hashes[i], a.username, a.first, a.last, email, a.superuser, a.active)
		if err != nil {
			return nil, err
		}
		u := User{Username: a.username, Password: s.opts.Password, Role: a.role, IsSuperuser: a.superuser}
		if a.role != "" {
			code, p := s.prov.code, s.places[0]
			switch {
			case a.district < 0:
			case a.subdistrict < 0:
				code = s.prov.districts[a.district].code
				p = s.firstPlace(a.district)
			default:
				p = s.places[s.placeIndex(a.district, a.subdistrict)]
				code = p.code
			}
			if _, err := insAU.ExecContext(s.ctx, id, s.authorityID[code], a.role, s.phone(), s.address(p), true); err != nil {
				return nil, fmt.Errorf("authority user %q: %w", a.username, err)
			}
			u.AuthorityCode = code
			if a.role == RoleReporter {
				s.reporters = append(s.reporters, reporter{id: id, place: s.placeIndex(a.district, a.subdistrict)})
			}
		}
		if a.login {
			out = append(out, u)
		}
	}

	// Two village health volunteers per subdistrict report from where they live.
	n := 0
	for pi, p := range s.places {
		for range 2 {
			n++
			fn, ln := firstNames[s.r.IntN(len(firstNames))], lastNames[s.r.IntN(len(lastNames))]
			username := fmt.Sprintf("%s.%c%02d", fn.latin, ln.latin[0], n)
			email := ""
			if s.r.IntN(3) > 0 {
				email = username + "@" + domain
			}
			id, err := add(unusablePassword(), username, fn.thai, ln.thai, email, false, s.r.IntN(40) > 0)
			if err != nil {
				return nil, err
			}
			if _, err := insAU.ExecContext(s.ctx, id, s.authorityID[p.code], RoleReporter, s.phone(), s.address(p), s.r.IntN(10) > 0); err != nil {
				return nil, err
			}
			s.reporters = append(s.reporters, reporter{id: id, place: pi})
		}
	}
	return out, nil
}

func (s *seeder) placeIndex(district, sub int) int {
	n := 0
	for i, p := range s.places {
		if p.district == district {
			if n == sub {
				return i
			}
			n++
		}
	}
	return 0
}

func (s *seeder) firstPlace(district int) seededPlace { return s.places[s.placeIndex(district, 0)] }

func (s *seeder) reportTypes() error {
	created := s.opts.Now.AddDate(-2, 0, 0)
	catID := map[string]int64{}
	for i, c := range categories {
		var id int64
		err := s.tx.QueryRowContext(s.ctx, `INSERT INTO reports_category (name, icon, ordering, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id`,
			c.name, c.icon, i+1, ohtkdb.FormatTime(created)).Scan(&id)
		if err != nil {
			return fmt.Errorf("category: %w", err)
		}
		catID[c.name] = id
	}
	for i, rt := range reportTypes() {
		st := seededType{reportType: rt, id: newUUID(s.r)}
		st.defJSON = mustJSON(rt.def)
		if rt.oldDef != nil {
			st.oldJSON = mustJSON(rt.oldDef)
		}
		var followup any
		if rt.followup != nil {
			followup = mustJSON(rt.followup)
		}
		updated := s.opts.Now.AddDate(0, -4, 0)
		if _, err := s.exec(`INSERT INTO reports_reporttype (id, name, category_id, definition, followup_definition,
			renderer_data_template, ordering, published, is_followable, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8, $9, $10)`,
			st.id, rt.name, catID[rt.category], st.defJSON, followup, rt.template, i+1, rt.followable,
			ohtkdb.FormatTime(created), ohtkdb.FormatTime(updated)); err != nil {
			return fmt.Errorf("report type: %w", err)
		}
		if _, err := s.exec(`INSERT INTO reports_reporttype_authorities (reporttype_id, authority_id) VALUES ($1, $2)`,
			st.id, s.authorityID[s.prov.code]); err != nil {
			return err
		}
		s.types = append(s.types, st)
	}
	return nil
}

// season weighs a day of the year for a report type: animal and human disease peak in the
// rainy season, smoke and haze in the dry season.
func season(category string, t time.Time) float64 {
	phase := 2 * math.Pi * float64(t.YearDay()) / 365
	switch category {
	case "สิ่งแวดล้อม":
		return 1 + 0.8*math.Cos(phase-2*math.Pi*75/365) // peaks mid-March
	default:
		return 1 + 0.5*math.Cos(phase-2*math.Pi*230/365) // peaks mid-August
	}
}

func (s *seeder) reports() error {
	insReport, err := s.tx.PrepareContext(s.ctx, `INSERT INTO reports_incidentreport
		(id, platform, reported_by_id, report_type_id, data, renderer_data, test_flag, cover_image_id, incident_date,
		 origin_data, origin_renderer_data, gps_location, relevant_authority_resolved, definition, created_at, updated_at, deleted_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`)
	if err != nil {
		return err
	}
	defer insReport.Close()
	insRel, err := s.tx.PrepareContext(s.ctx, `INSERT INTO reports_incidentreport_relevant_authorities
		(incidentreport_id, authority_id) VALUES ($1, $2)`)
	if err != nil {
		return err
	}
	defer insRel.Close()
	insFollow, err := s.tx.PrepareContext(s.ctx, `INSERT INTO reports_followupreport
		(id, incident_id, report_type_id, reported_by_id, data, renderer_data, test_flag, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`)
	if err != nil {
		return err
	}
	defer insFollow.Close()

	totalWeight := 0
	for _, t := range s.types {
		totalWeight += t.weight
	}
	// A swine outbreak in the second district about three months ago gives the plots a story.
	outbreakStart := s.opts.Now.AddDate(0, 0, -110)
	outbreakReporters := []reporter{}
	for _, rep := range s.reporters {
		if s.places[rep.place].district == 1 {
			outbreakReporters = append(outbreakReporters, rep)
		}
	}
	r := s.r
	for range s.opts.Reports {
		rt := &s.types[0]
		rep := s.reporters[r.IntN(len(s.reporters))]
		var force map[string]string
		var created time.Time
		if r.IntN(100) < 6 && len(outbreakReporters) > 0 {
			rep = outbreakReporters[r.IntN(len(outbreakReporters))]
			created = outbreakStart.Add(time.Duration(r.IntN(21*86400)) * time.Second)
			force = map[string]string{"animal_type": "สุกร"}
		} else {
			w := r.IntN(totalWeight)
			for i := range s.types {
				if w < s.types[i].weight {
					rt = &s.types[i]
					break
				}
				w -= s.types[i].weight
			}
			for {
				created = s.opts.Now.Add(-time.Duration(r.Int64N(365*86400)) * time.Second)
				if r.Float64()*1.8 < season(rt.category, created) {
					break
				}
			}
		}
		// Reports are written in daytime, local time.
		local := created.In(bangkok)
		local = time.Date(local.Year(), local.Month(), local.Day(), 6+r.IntN(15), r.IntN(60), r.IntN(60), r.IntN(1e6)*1000, bangkok)
		created = local.UTC()
		if created.After(s.opts.Now) {
			created = created.AddDate(0, 0, -1)
			local = created.In(bangkok)
		}
		p := s.places[rep.place]
		lng, lat := p.lng+(r.Float64()-0.5)*0.03, p.lat+(r.Float64()-0.5)*0.03
		tz := "Asia/Bangkok"
		if r.IntN(50) == 0 {
			tz = "Asia/Vientiane"
		}
		ans := &answerer{r: r, local: local, lng: lng, lat: lat, force: force}
		data := ans.form(rt.def, tz)
		if c, ok := data["counts"].(map[string]any); ok {
			// A herd is at least as large as its sick and dead animals.
			if total, ok := c["total"].(int); ok {
				if min := c["sick"].(int) + c["dead"].(int); total < min {
					c["total"], c["total__value"] = min+total, strconv.Itoa(min+total)
				}
			}
		}
		dataJSON := mustJSON(data)
		rendered := render(rt.template, data)
		id := newUUID(r)

		var definition any
		switch age := s.opts.Now.Sub(created); {
		case age > 240*24*time.Hour:
			// Reports older than the definition snapshot feature carry none.
		case age > 120*24*time.Hour && rt.oldJSON != "":
			definition = rt.oldJSON
		default:
			definition = rt.defJSON
		}
		var cover any
		if len(ans.images) > 0 {
			cover = ans.images[0]
		}
		var gps any = fmt.Sprintf("SRID=4326;POINT(%s %s)", coord(lng), coord(lat))
		if r.IntN(40) == 0 {
			gps = nil
		}
		var reportedBy any = rep.id
		if r.IntN(200) == 0 {
			reportedBy = nil
		}
		// About one report in ten was edited later; those keep their first answers in origin_data.
		updated := created
		var originData, originRendered any
		if r.IntN(10) == 0 {
			updated = created.Add(time.Duration(1+r.IntN(72*3600)) * time.Second)
			originData, originRendered = dataJSON, rendered
		}
		var deleted any
		if r.IntN(100) == 0 {
			deleted = ohtkdb.FormatTime(created.Add(time.Duration(1+r.IntN(48*3600)) * time.Second))
		}
		test := r.IntN(50) == 0
		var relevant []string
		if r.IntN(50) > 0 {
			relevant = s.ancestors(p.code)
		}
		incident := local.AddDate(0, 0, -r.IntN(4)).Format(ohtkdb.DateFormat)
		platform := [...]string{"android", "android", "android", "ios", "web"}[r.IntN(5)]

		if _, err := insReport.ExecContext(s.ctx, id, platform, reportedBy, rt.id, dataJSON, rendered, test, cover, incident,
			originData, originRendered, gps, len(relevant) > 0, definition,
			ohtkdb.FormatTime(created), ohtkdb.FormatTime(updated), deleted); err != nil {
			return fmt.Errorf("incident report: %w", err)
		}
		for _, code := range relevant {
			if _, err := insRel.ExecContext(s.ctx, id, s.authorityID[code]); err != nil {
				return fmt.Errorf("relevant authority: %w", err)
			}
		}
		if rt.followup != nil && r.IntN(12) == 0 {
			at := created
			for range 1 + r.IntN(2) {
				at = at.Add(time.Duration(12*3600+r.IntN(5*86400)) * time.Second)
				if at.After(s.opts.Now) {
					break
				}
				fa := &answerer{r: r, local: at.In(bangkok), lng: lng, lat: lat}
				fdata := fa.form(rt.followup, tz)
				if _, err := insFollow.ExecContext(s.ctx, newUUID(r), id, rt.id, rep.id, mustJSON(fdata),
					render("{{status}}", fdata), test, ohtkdb.FormatTime(at)); err != nil {
					return fmt.Errorf("follow-up report: %w", err)
				}
			}
		}
	}
	return nil
}

func (s *seeder) zeroReports() error {
	ins, err := s.tx.PrepareContext(s.ctx, `INSERT INTO reports_zeroreport (id, platform, reported_by_id, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	for range s.opts.ZeroReports {
		rep := s.reporters[s.r.IntN(len(s.reporters))]
		at := s.opts.Now.Add(-time.Duration(1+s.r.Int64N(365*86400)) * time.Second)
		platform := [...]string{"android", "android", "ios"}[s.r.IntN(3)]
		if _, err := ins.ExecContext(s.ctx, newUUID(s.r), platform, rep.id, ohtkdb.FormatTime(at)); err != nil {
			return fmt.Errorf("zero report: %w", err)
		}
	}
	return nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps, slices, strings and numbers are marshalled here
	}
	return string(b)
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
