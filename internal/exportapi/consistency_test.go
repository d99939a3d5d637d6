package exportapi

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// concurrentID is the id of the writer's report number i.
func concurrentID(i int) string { return fmt.Sprintf("eeeeeeee-0000-4000-8000-%012d", i) }

// writer inserts reports one transaction each until stopped, and tells how many it committed.
type writer struct {
	e       *env
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	n       int
	err     error
	started chan struct{}
}

func startWriter(e *env) *writer {
	w := &writer{e: e, stop: make(chan struct{}), done: make(chan struct{}), started: make(chan struct{})}
	go func() {
		defer close(w.done)
		early := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
		late := time.Date(2026, 5, 20, 0, 0, 0, 0, time.UTC)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			at := early.Add(time.Duration(i) * time.Second)
			if i%2 == 1 {
				at = late.Add(time.Duration(i) * time.Second)
			}
			_, err := e.db.Exec(`INSERT INTO reports_incidentreport (id, reported_by_id, report_type_id, data, incident_date, created_at, updated_at)
				VALUES ($1, 4, $2, '{"title":"ระหว่างส่งออก"}', $3, $4, $4)`, concurrentID(i), reportTypeID, at.Format(time.DateOnly), ts(at))
			w.mu.Lock()
			if err != nil {
				w.err = err
				w.mu.Unlock()
				return
			}
			w.n++
			if w.n == 20 {
				close(w.started)
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// Stop ends the writer and returns how many reports it committed.
func (w *writer) Stop(t *testing.T) int {
	close(w.stop)
	<-w.done
	if w.err != nil {
		t.Fatal(w.err)
	}
	return w.n
}

// checkSnapshot asserts that seen holds every seeded report once, and of the writer's
// reports exactly the first k for some k: what one snapshot taken while they were being
// committed in order can hold.
func checkSnapshot(t *testing.T, seen map[string]int, seeded int) {
	t.Helper()
	base, inserted := 0, 0
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s exported %d times", id, n)
		}
		if strings.HasPrefix(id, "eeeeeeee-") {
			inserted++
		} else {
			base++
		}
	}
	if base != seeded {
		t.Errorf("%d seeded reports exported, want %d", base, seeded)
	}
	for i := range inserted {
		if seen[concurrentID(i)] != 1 {
			t.Fatalf("the export holds %d of the reports written meanwhile, but not number %d: not one snapshot", inserted, i)
		}
	}
	t.Logf("%d seeded reports and the first %d written meanwhile", base, inserted)
}

// TestExportIsOneSnapshot downloads a CSV export slowly while another connection keeps
// committing reports that sort both before and after the rows already sent: the file holds
// every report that existed when the export began, once, and of the new ones exactly those
// committed before some instant.
func TestExportIsOneSnapshot(t *testing.T) {
	e := newEnv(t, Options{BasicPasswords: true})
	e.seed(t)
	const reports = 20000
	seedReports(t, e, reports)
	seeded := reports + 4 // and the fixtures that are not test or deleted reports

	req, _ := http.NewRequest("GET", e.srv.URL+"/t/bunny/api/export/v1/incident-reports?format=csv&bom=false", nil)
	req.SetBasicAuth("super", testPassword)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	body := bufio.NewReaderSize(res.Body, 1<<10)
	head, err := body.Peek(512) // the export is under way
	if err != nil || !strings.HasPrefix(string(head), "id,") {
		t.Fatalf("start of export: %q %v", head, err)
	}
	w := startWriter(e)
	select {
	case <-w.started:
	case <-time.After(time.Minute):
		t.Fatal("the writer did not commit while the export was open")
	}
	rest, err := io.ReadAll(body)
	written := w.Stop(t)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(string(rest))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range recs[1:] {
		seen[r[0]]++
	}
	t.Logf("%d reports committed during the download", written)
	checkSnapshot(t, seen, seeded)
}

// TestPaginationUnderConcurrentInserts pages through incident reports with keyset cursors
// while reports are inserted before and after the cursor between pages: no report is
// skipped or repeated. Reports inserted behind the cursor are, by design, not on later pages.
func TestPaginationUnderConcurrentInserts(t *testing.T) {
	e := newEnv(t, Options{BasicPasswords: true})
	e.seed(t)
	const reports = 2000
	seedReports(t, e, reports)
	seeded := reports + 4
	su := basic("super", testPassword)
	for _, dateField := range []string{"created_at", "incident_date"} {
		t.Run(dateField, func(t *testing.T) {
			w := startWriter(e)
			defer w.Stop(t)
			<-w.started
			seen := map[string]int{}
			q := url.Values{"limit": {"150"}, "dateField": {dateField}}
			for pages := 0; ; pages++ {
				if pages > 1000 {
					t.Fatal("pagination does not end")
				}
				rows, next := results(t, e.get(t, "/t/bunny/api/export/v1/incident-reports?"+q.Encode(), su))
				for _, id := range ids(rows) {
					seen[id]++
				}
				if next == nil {
					break
				}
				q.Set("cursor", *next)
			}
			base := 0
			for id, n := range seen {
				if n != 1 {
					t.Errorf("%s on %d pages", id, n)
				}
				if !strings.HasPrefix(id, "eeeeeeee-") {
					base++
				}
			}
			if base != seeded {
				t.Errorf("%d of the %d reports that existed throughout were listed", base, seeded)
			}
		})
		// The next run writes new ids.
		if _, err := e.db.Exec(`DELETE FROM reports_incidentreport WHERE CAST(id AS TEXT) LIKE 'eeeeeeee-%'`); err != nil {
			t.Fatal(err)
		}
	}
}
