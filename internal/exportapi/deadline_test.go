package exportapi

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestLongDownloadOutlivesWriteTimeout serves through an http.Server whose WriteTimeout is
// far shorter than a slow client's download: the handler pushes the write deadline ahead
// at every flush, so the file arrives whole; with a per-flush allowance shorter than the
// client's pause, the download is cut.
func TestLongDownloadOutlivesWriteTimeout(t *testing.T) {
	e := newEnv(t, Options{})
	e.seed(t)
	seedReports(t, e, 20000)
	tok := addToken(t, e.db, userSuper, "slow-token", testNow.Add(time.Hour))

	serve := func(perFlush time.Duration) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts := Options{WriteTimeout: perFlush}
		opts.Now = e.clock.Now
		srv := &http.Server{Handler: tenantMux(e.store, New(opts)), WriteTimeout: 300 * time.Millisecond}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return "http://" + ln.Addr().String()
	}
	download := func(base string, pause func(read int) time.Duration) (int, error) {
		req, _ := http.NewRequest("GET", base+"/t/bunny/api/export/v1/incident-reports?format=ndjson", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		r := bufio.NewReaderSize(res.Body, 32<<10)
		buf := make([]byte, 32<<10)
		lines, read := 0, 0
		for {
			n, err := r.Read(buf)
			lines += bytes.Count(buf[:n], []byte("\n"))
			read++
			if err == io.EOF {
				return lines, nil
			}
			if err != nil {
				return lines, err
			}
			time.Sleep(pause(read))
		}
	}

	// Slow and steady: about 1 s in all, three times the server's WriteTimeout.
	lines, err := download(serve(10*time.Second), func(int) time.Duration { return 2 * time.Millisecond })
	if err != nil || lines != 20004 {
		t.Fatalf("slow download: %d lines, %v", lines, err)
	}
	// One long pause, longer than the per-flush allowance, cuts the download.
	lines, err = download(serve(100*time.Millisecond), func(read int) time.Duration {
		if read == 3 {
			return 2 * time.Second
		}
		return 0
	})
	if err == nil && lines == 20004 {
		t.Fatal("a stalled client kept the connection past the per-flush allowance")
	}
}
