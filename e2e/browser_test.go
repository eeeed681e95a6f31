package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/internal/uma"
)

// ScreenshotEnv names a file the browser test writes its screenshot of
// Bob's page to (PNG); docs/incoming-page.png was made that way.
const ScreenshotEnv = "UMAWIDE_SCREENSHOT"

// chromium finds a Chromium (or Chrome) binary: Debian's chromium package
// first (its binary, then its wrapper script).
func chromium() string {
	if _, err := os.Stat("/usr/lib/chromium/chromium"); err == nil {
		return "/usr/lib/chromium/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestBobsPageInABrowser: Bob, in headless Chromium, logs in through
// Keycloak's real login page, sees what Alice pushed, downloads it, denies
// foo.example and watches Alice's next push be refused, allows it again
// and watches it succeed, deletes a message and logs out. The realm copy
// registers the page's two URIs exactly (no loopback wildcard).
func TestBobsPageInABrowser(t *testing.T) {
	chrome := chromium()
	if chrome == "" {
		t.Skip("no Chromium binary (Debian's chromium package, or chromium-browser / google-chrome on PATH): install it (.ci/run does) to run the browser test")
	}
	rsAddr := e2etest.FreeAddr(t)
	page := "http://" + rsAddr + "/web/"
	w := &world{e2etest.New(t, e2etest.Options{RSAddr: rsAddr, MutateRealm: func(rep map[string]any) {
		for _, c := range rep["clients"].([]any) {
			if cl := c.(map[string]any); cl["clientId"] == "incoming-app" {
				cl["redirectUris"] = []any{page + "callback", page}
			}
		}
	}})}

	push := func(data []byte) e2etest.CLIResult {
		return w.CLI(t, nil, w.PushArgs(writeFile(t, "for-the-page.txt", data), "--email", e2etest.AliceEmail, "--json")...)
	}
	pushed := func(data []byte) string {
		t.Helper()
		r := push(data)
		var res pushResult
		if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &res) != nil || !res.OK {
			t.Fatalf("push: %s", r)
		}
		return res.Message.ID
	}
	first := []byte("Hello Bob,\nthe minutes of Tuesday's meeting, as promised.\n— Alice\n")
	firstID := pushed(first)

	// The browser lives as long as this context (chromedp: no timeout on
	// the first Run's context but the bound of the whole test).
	ctx := e2etest.Timeout(t, 10*time.Minute)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.WindowSize(1360, 820),
		chromedp.DisableGPU,
		// Modest memory on a shared machine: one renderer, a small V8 heap,
		// /tmp instead of /dev/shm, nothing in the background.
		chromedp.Flag("renderer-process-limit", "1"),
		chromedp.Flag("js-flags", "--max-old-space-size=96"),
		chromedp.Flag("disable-features", "site-per-process,Translate,MediaRouter,OptimizationHints"),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to run its sandbox as root.
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// failed shows where the browser was and what it showed.
	failed := func(what string, err error) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(sctx, chromedp.Location())
		html, _ := chromedp.Run(sctx, chromedp.OuterHTML(chromedp.CSS("html")))
		t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, html)
	}
	// Each step is bounded (a page that never shows what is waited for
	// fails the test in minutes, not at the end of the run); the first
	// Run starts the browser with the whole test's context.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting Chromium (%s): %v", chrome, err)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			failed(what, err)
		}
	}
	get := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(bctx, a)
		if err != nil {
			failed(what, err)
		}
		return v
	}
	pageHTML := func() string { t.Helper(); return get("reading the page", chromedp.OuterHTML(chromedp.CSS("main"))) }

	// Log in through Keycloak's own login page.
	do("opening the page", chromedp.Navigate(page), chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.ID("username")))
	loginAt := get("login page", chromedp.Location())
	do("logging in",
		chromedp.SendKeys(chromedp.ID("username"), "bob"),
		chromedp.SendKeys(chromedp.ID("password"), e2etest.BobPassword),
		chromedp.Click(chromedp.ID("kc-login")),
		chromedp.WaitVisible(chromedp.ID("owner")),
	)
	if owner := get("owner", chromedp.Text(chromedp.ID("owner"))); !strings.HasPrefix(loginAt, w.KC.IssuerURL(w.Realm)+"/") || owner != "bob" {
		t.Fatalf("login page at %s, page of %q", loginAt, owner)
	}

	// The pushed message, with what the page must show of it.
	html := pageHTML()
	for _, want := range []string{firstID, e2etest.AliceEmail, hexSHA(first), "text/plain", "for-the-page.txt"} {
		if !strings.Contains(html, want) {
			t.Fatalf("the page lacks %q:\n%s", want, html)
		}
	}

	// Download it: the same bytes.
	dir := t.TempDir()
	progress := chromedp.Events(bctx, browser.DownloadProgress)
	do("downloading",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true),
			})
			return err
		}),
		chromedp.Click(chromedp.CSS(`tr[id="m-`+firstID+`"] a.download`)),
	)
	guid := ""
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the download: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			guid = ev.GUID
			break
		}
	}
	if got, err := os.ReadFile(filepath.Join(dir, guid)); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("downloaded %q (%v), want %q", got, err, first)
	}

	// Rules: deny foo.example. The page is loaded afresh before each save
	// so that the notice waited for is the one of this save.
	saveDeny := func(deny string) {
		t.Helper()
		typed := deny
		if typed == "" {
			// chromedp v0.23.0's SetValue cannot set "" (the empty argument
			// is dropped and the field reads "undefined"): a blank line is
			// an empty list to the page too.
			typed = " "
		}
		do("saving the rules",
			chromedp.Navigate(page),
			chromedp.WaitVisible(chromedp.ID("save-rules")),
			chromedp.SetValue(chromedp.ID("deny"), typed),
			chromedp.Click(chromedp.ID("save-rules")),
			chromedp.WaitVisible(chromedp.ID("notice")),
		)
		if got := get("deny list", chromedp.Value(chromedp.ID("deny"))); strings.TrimSpace(got) != deny {
			t.Fatalf("deny list shown after saving: %q, want %q", got, deny)
		}
	}
	if !strings.Contains(html, `id="rules-form"`) {
		t.Fatalf("no rules form on the page:\n%s", html)
	}
	saveDeny("foo.example")
	r := push([]byte("refused, I hope"))
	if r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, uma.RefusalOwnerRefused) {
		t.Fatalf("push with foo.example denied: want a refusal naming %s, got %s", uma.RefusalOwnerRefused, r)
	}
	saveDeny("")
	second := []byte("Hello again Bob,\nnow that you let foo.example in again.\n")
	secondID := pushed(second)

	do("reloading", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("m-"+secondID)))
	if rows, err := chromedp.Run(bctx, chromedp.Nodes(chromedp.CSSAll("#messages tbody tr"))); err != nil || len(rows) != 2 {
		t.Fatalf("%d messages on the page (%v), want the two pushed:\n%s", len(rows), err, pageHTML())
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot: %v, %d bytes, not a PNG", err, len(png))
	}
	if p := os.Getenv(ScreenshotEnv); p != "" {
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of Bob's page written to %s", p)
	}

	// Delete the first message from the page.
	do("deleting",
		chromedp.Click(chromedp.CSS(`tr[id="m-`+firstID+`"] button.delete`)),
		chromedp.WaitVisible(chromedp.ID("notice")),
	)
	if html := pageHTML(); strings.Contains(html, firstID) || !strings.Contains(html, secondID) {
		t.Fatalf("after deleting %s:\n%s", firstID, html)
	}

	// Log out (at Keycloak too): the page asks for a login again.
	do("logging out",
		chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.ID("login")),
	)
}
