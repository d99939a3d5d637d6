package demo

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds Debian's Chromium; the end-to-end test fails without it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: install it with: sudo apt-get install -y chromium")
	return ""
}

// startDemo runs a demo on random loopback ports in a temporary data directory.
func startDemo(t *testing.T, reports int) *Demo {
	t.Helper()
	d, err := Start(t.Context(), Options{
		DataDir: t.TempDir(), HubAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0", UIDBase: testUIDBase, Reports: reports,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		d.Close(ctx)
	})
	return d
}

// exportCount counts the incident reports the Export API returns to a user (HTTP Basic).
func exportCount(t *testing.T, tenantAPI, username, password string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", tenantAPI+"/api/export/v1/incident-reports?format=ndjson", nil)
	req.SetBasicAuth(username, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("export for %s: status %d", username, resp.StatusCode)
	}
	n := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func user(t *testing.T, ti TenantInfo, name string) UserInfo {
	t.Helper()
	for _, u := range ti.Users {
		if u.Username == name {
			return u
		}
	}
	t.Fatalf("tenant %s has no user %s", ti.Key, name)
	return UserInfo{}
}

var reportsLine = regexp.MustCompile(`(\S+) (\d+) incident reports`)

// TestBrowserEndToEnd signs in through each tenant in a real Chromium, lands in the
// Jupyter UI served through the hub's proxy, runs the starter notebook in a kernel and
// checks that it saw exactly the rows the Export API gives that user.
func TestBrowserEndToEnd(t *testing.T) {
	exe := chromium(t)
	d := startDemo(t, 600)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(),
		append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(exe),
			chromedp.NoSandbox,
			chromedp.Headless,
			chromedp.Flag("disable-gpu", true),
			chromedp.WindowSize(1280, 900),
		)...)
	defer cancelAlloc()

	seen := map[string]int{}
	for _, ti := range d.Info.Tenants {
		t.Run(ti.Key, func(t *testing.T) {
			u := user(t, ti, "alice")
			want := exportCount(t, ti.APIURL, u.Username, u.Password)

			// A fresh browser context per tenant: no cookies shared.
			ctx, cancel := chromedp.NewContext(allocCtx)
			defer cancel()
			ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
			defer cancelTimeout()
			defer screenshotOnFailure(t, ctx, ti.Key)

			hubUser := ti.Key + "_" + u.Username
			button := chromedp.Search(`//*[self::a or self::button][contains(., "Sign in with ` + ti.Label + `")]`)
			err := chromedp.Do(ctx,
				chromedp.Navigate(d.Info.HubURL),
				chromedp.WaitVisible(button),
			)
			if err != nil {
				t.Fatalf("login page: %v", err)
			}
			loginText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			if err != nil {
				t.Fatal(err)
			}
			for _, other := range d.Info.Tenants {
				if !strings.Contains(loginText, "Sign in with "+other.Label) {
					t.Errorf("login page lacks the button for %s: %q", other.Label, loginText)
				}
			}
			err = chromedp.Do(ctx,
				chromedp.Click(button),
				// The tenant's own login page (the api's built-in provider).
				chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
				chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), u.Username),
				chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), u.Password),
				chromedp.Submit(chromedp.CSS(`input[name="password"]`)),
			)
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			// The hub spawns the server and sends the browser to it; the classic Jupyter
			// file list must render with the starter notebook in it.
			treeURL, err := waitForJupyter(ctx, hubUser)
			if err != nil {
				t.Fatalf("jupyter UI: %v", err)
			}
			if !strings.Contains(treeURL, "/user/"+hubUser+"/") {
				t.Fatalf("landed on %s, want the server of %s", treeURL, hubUser)
			}
			nb := strings.SplitN(treeURL, "/user/", 2)[0] + "/user/" + hubUser + "/notebooks/starter.ipynb"
			err = chromedp.Do(ctx, chromedp.Navigate(nb))
			if err == nil {
				_, err = chromedp.Run(ctx, chromedp.Poll[bool](`window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected()`, chromedp.WithPollingTimeout(90*time.Second)))
			}
			if err == nil {
				_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`Jupyter.notebook.execute_all_cells(); true`))
			}
			var output string
			if err == nil {
				output, err = chromedp.Run(ctx, chromedp.Poll[string](`(() => {
					const cells = Jupyter.notebook.get_cells().filter(c => c.cell_type === "code");
					const done = cells.every(c => c.get_text() === "" || (c.input_prompt_number !== null && c.input_prompt_number !== undefined && c.input_prompt_number !== "*"));
					if (!done) return false;
					return cells.map(c => c.output_area.outputs.map(o => o.text || (o.data && o.data["image/png"] && "[image/png]") || (o.data && o.data["text/plain"]) || (o.ename ? o.ename + ": " + o.evalue : "")).join("\\n")).join("\\n----\\n");
				})()`, chromedp.WithPollingTimeout(120*time.Second)))
			}
			if err != nil {
				t.Fatalf("running the starter notebook: %v", err)
			}
			m := reportsLine.FindStringSubmatch(output)
			if m == nil {
				t.Fatalf("starter notebook printed no report count; outputs:\n%s", output)
			}
			if strings.Contains(output, "Error") || strings.Contains(output, "Traceback") {
				t.Fatalf("starter notebook failed:\n%s", output)
			}
			// The weekly plot is drawn, its Thai report type names in a font that has them.
			if !strings.Contains(output, "[image/png]") || strings.Contains(output, "missing from current font") {
				t.Fatalf("starter notebook drew no plot or lacked Thai glyphs:\n%s", output)
			}
			got, _ := strconv.Atoi(m[2])
			if m[1] != ti.Key || got != want {
				t.Fatalf("notebook saw tenant %s with %d reports; Export API gives %s's %s %d", m[1], got, ti.Key, u.Username, want)
			}
			seen[ti.Key] = got
		})
	}
	if len(seen) == 2 && seen["bunny"] == seen["bon"] {
		t.Errorf("both tenants showed %d reports: tenants' data not distinct", seen["bunny"])
	}
}

// waitForJupyter waits until the browser shows the classic Jupyter file list and returns its URL.
func waitForJupyter(ctx context.Context, hubUser string) (string, error) {
	deadline := time.Now().Add(3 * time.Minute)
	var url string
	for time.Now().Before(deadline) {
		var err error
		if url, err = chromedp.Run(ctx, chromedp.Location()); err != nil {
			return url, err
		}
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector("#notebook_list") && document.body.innerText.includes("starter.ipynb")`))
		if err == nil && ok {
			return url, nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	return url, fmt.Errorf("no Jupyter file list for %s at %s after 3 minutes; page says %q", hubUser, url, text)
}

// screenshotOnFailure saves the browser's page when the test failed.
func screenshotOnFailure(t *testing.T, ctx context.Context, name string) {
	if !t.Failed() {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	dir := filepath.Join(os.TempDir(), "ohtkhub-e2e")
	os.MkdirAll(dir, 0o755)
	path := filepath.Join(dir, name+"-"+time.Now().Format("150405")+".png")
	if err := os.WriteFile(path, png, 0o644); err == nil {
		t.Logf("screenshot: %s", path)
	}
}
