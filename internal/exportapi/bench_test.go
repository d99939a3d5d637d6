package exportapi

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchReports is how many incident reports the export benchmarks add: 100,000, or
// OHTKHUB_BENCH_REPORTS to see how time and memory grow with the size of an export.
var benchReports = func() int {
	if n, err := strconv.Atoi(os.Getenv("OHTKHUB_BENCH_REPORTS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}()

// seedBench adds benchReports reports to the fixtures, in one transaction.
func seedBench(b testing.TB, e *env) { seedReports(b, e, benchReports) }

// seedReports adds n generated reports to the fixtures, in one transaction.
func seedReports(b testing.TB, e *env, n int) {
	tx, err := e.db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	rep, err := tx.Prepare(`INSERT INTO reports_incidentreport (id, reported_by_id, report_type_id, data, renderer_data, incident_date, gps_location, created_at, updated_at)
		VALUES ($1, 4, $2, $3, $4, $5, $6, $7, $7)`)
	if err != nil {
		b.Fatal(err)
	}
	rel, err := tx.Prepare(`INSERT INTO reports_incidentreport_relevant_authorities (incidentreport_id, authority_id) VALUES ($1, $2)`)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("cccccccc-0000-4000-8000-%012d", i)
		created := start.Add(time.Duration(i) * 5 * time.Minute)
		data := fmt.Sprintf(`{"tz":"Asia/Bangkok","title":"ไก่ตายผิดปกติ %d","detail":"พบไก่ตาย %d ตัวในฟาร์ม","animals":%d,"weight":%d.5,`+
			`"found_date":"%s","found_at":"%s","place":"98.%04d,18.%04d","species":"ไก่","species_text":null,`+
			`"symptoms":{"ไข้":true,"ท้องเสีย":%t,"other":false,"other_text":null,"value":"ไข้"},"photos":["img-%d"],"docs":[],`+
			`"herd":{"k1":{"tag":"A-%d","age":2}, "value":"k1"},"contact":{"name":"สมชาย","phone":"08100%05d"}}`,
			i, i%50, i%50, i%9, created.Format(time.DateOnly), created.Format(time.RFC3339), i%10000, i%10000, i%2 == 0, i, i, i%100000)
		if _, err := rep.Exec(id, reportTypeID, data, "ไก่ตายผิดปกติ", created.Format(time.DateOnly),
			fmt.Sprintf("SRID=4326;POINT(98.%04d 18.%04d)", i%10000, i%10000), ts(created)); err != nil {
			b.Fatal(err)
		}
		for _, a := range [][]int{{authMueang}, {authSansai, authTambon}, {authMueang, authSansai, authTambon}, {authLamphun}}[i%4] {
			if _, err := rel.Exec(id, a); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// peakHeap samples the heap in use while a benchmark runs.
type peakHeap struct {
	peak atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

func startPeakHeap() *peakHeap {
	p := &peakHeap{stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > p.peak.Load() {
				p.peak.Store(m.HeapInuse)
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *peakHeap) Stop() uint64 {
	close(p.stop)
	p.wg.Wait()
	return p.peak.Load()
}

// BenchmarkExportCSV100k exports 100,000 incident reports (plus the fixtures) as CSV
// through the handler and an HTTP connection, and reports rows/s and the peak heap.
func BenchmarkExportCSV100k(b *testing.B) { benchExport(b, "csv") }

// BenchmarkExportXLSX100k is BenchmarkExportCSV100k for xlsx: the rows go through
// excelize's StreamWriter and temporary files, then the workbook is copied out.
func BenchmarkExportXLSX100k(b *testing.B) { benchExport(b, "xlsx") }

// BenchmarkExportParquet100k is BenchmarkExportCSV100k for Parquet.
func BenchmarkExportParquet100k(b *testing.B) { benchExport(b, "parquet") }

// benchExport exports 100,000 incident reports in format, whole and flat for an
// authority's officer.
func benchExport(b *testing.B, format string) {
	e := newEnv(b, Options{BasicPasswords: true})
	e.seed(b)
	seedBench(b, e)
	tok := addToken(b, e.db, userSuper, "bench-super", testNow.Add(24*time.Hour))
	officer := addToken(b, e.db, userAdmin, "bench-admin", testNow.Add(24*time.Hour))
	for _, bc := range []struct {
		name, path, token string
		rows              int
	}{
		{"incident-reports", "incident-reports?format=" + format, tok, benchReports + 4},
		{"flat-scoped", "incident-reports/flat?format=" + format + "&reportTypeId=" + reportTypeID, officer, benchReports*3/4 + 2},
	} {
		b.Run(bc.name, func(b *testing.B) {
			runtime.GC()
			peak := startPeakHeap()
			b.ReportAllocs()
			var bytes int64
			start := time.Now()
			n := 0
			for b.Loop() {
				req, _ := http.NewRequest("GET", e.srv.URL+"/t/bunny/api/export/v1/"+bc.path, nil)
				req.Header.Set("Authorization", "Bearer "+bc.token)
				res, err := e.srv.Client().Do(req)
				if err != nil {
					b.Fatal(err)
				}
				c, err := io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if err != nil || res.StatusCode != 200 {
					b.Fatalf("status %d: %v", res.StatusCode, err)
				}
				bytes = c
				n++
			}
			elapsed := time.Since(start)
			heap := peak.Stop()
			var got int64
			e.db.QueryRow(`SELECT rows FROM ohtkhub_export_audit ORDER BY id DESC LIMIT 1`).Scan(&got)
			if got != int64(bc.rows) {
				b.Fatalf("exported %d rows, want %d", got, bc.rows)
			}
			b.ReportMetric(float64(bc.rows)*float64(n)/elapsed.Seconds(), "rows/s")
			b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(bytes)/(1<<20), "MB/export")
		})
	}
}
