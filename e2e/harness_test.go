package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	adminKey  = "e2e-bootstrap-admin-key-0123456789abcdef"
	jwtSecret = "e2e-jwt-secret-0123456789abcdef-0123456789"
)

// refrainBin is the refrain binary TestMain builds for the whole package.
var refrainBin string

func TestMain(m *testing.M) {
	// The tests mostly wait on the processes they start (sweeps, leases,
	// retries), so more of them run at once than the CPU count that -parallel
	// defaults to, unless -parallel is given.
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		_ = flag.Set("test.parallel", "8")
	}
	dir, err := os.MkdirTemp("", "refrain-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	refrainBin = filepath.Join(dir, "refrain")
	build := exec.Command("go", "build", "-o", refrainBin, "../cmd/refrain")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build ./cmd/refrain:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a local TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// server is one refrain process started from the built binary.
type server struct {
	t    *testing.T
	env  []string
	args []string
	URL  string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRefrain runs `refrain serve` with the settings given (on top of a
// listen address, the bootstrap admin key and the JWT secret) and waits until
// /readyz answers 200. The process is stopped when the test ends; its log is
// printed when the test failed.
func startRefrain(t *testing.T, settings map[string]string) *server {
	t.Helper()
	port := freePort(t)
	env := append(os.Environ(),
		fmt.Sprintf("REFRAIN_LISTEN=127.0.0.1:%d", port),
		"REFRAIN_ADMIN_API_KEY="+adminKey,
		"REFRAIN_JWT_SECRET="+jwtSecret,
		"REFRAIN_LOG_FORMAT=json",
		"REFRAIN_SHUTDOWN_TIMEOUT=2s",
		// The suite runs on the wall clock at any hour; quiet hours would
		// hold its marketing sends until morning. They are tested on a
		// virtual clock in plugin (TestQuietHoursMoveSend and the engine gate).
		"REFRAIN_PRESSURE_QUIET_HOURS=none",
	)
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	s := &server{t: t, env: env, args: []string{"serve"}, URL: fmt.Sprintf("http://127.0.0.1:%d", port),
		log: filepath.Join(t.TempDir(), "refrain.log")}
	s.start()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			raw, _ := os.ReadFile(s.log)
			if len(raw) > 8000 {
				raw = raw[len(raw)-8000:]
			}
			t.Logf("refrain log (tail):\n%s", raw)
		}
	})
	return s
}

// start starts the process (again) and waits for /readyz.
func (s *server) start() {
	s.t.Helper()
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(s.t, err)
	cmd := exec.Command(refrainBin, s.args...)
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(s.t, cmd.Start())
	s.cmd, s.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	s.waitReady()
}

func (s *server) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-s.done:
			raw, _ := os.ReadFile(s.log)
			s.t.Fatalf("refrain exited before it was ready:\n%s", raw)
		default:
		}
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("refrain at %s not ready after a minute (last error %v)", s.URL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// stop sends SIGTERM and waits (SIGKILL after 10 s).
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
}

// gqlResult is a decoded GraphQL response.
type gqlResult struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// codes lists the extensions.code of every error.
func (r gqlResult) codes() []string {
	var out []string
	for _, e := range r.Errors {
		c, _ := e.Extensions["code"].(string)
		out = append(out, c)
	}
	return out
}

// decode fails the test on errors and unmarshals data into v.
func (r gqlResult) decode(t *testing.T, v any) {
	t.Helper()
	require.Empty(t, r.Errors, "unexpected GraphQL errors")
	require.NoError(t, json.Unmarshal(r.Data, v))
}

// postGraphQL sends one GraphQL request to url with an optional bearer credential.
func postGraphQL(t *testing.T, url, bearer, query string, vars map[string]any) gqlResult {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out gqlResult
	require.NoError(t, json.Unmarshal(raw, &out), "%s answered %d: %s", url, resp.StatusCode, raw)
	return out
}

// gql sends a GraphQL request to this refrain's /graphql.
func (s *server) gql(bearer, query string, vars map[string]any) gqlResult {
	s.t.Helper()
	return postGraphQL(s.t, s.URL+"/graphql", bearer, query, vars)
}

// admin sends a GraphQL request with the bootstrap admin key and decodes its data.
func (s *server) admin(query string, vars map[string]any, v any) {
	s.t.Helper()
	res := s.gql(adminKey, query, vars)
	require.Empty(s.t, res.Errors, "GraphQL errors for %s", strings.Join(strings.Fields(query), " "))
	if v != nil {
		require.NoError(s.t, json.Unmarshal(res.Data, v))
	}
}

// eventually polls cond until it holds, failing with msg after a deadline.
// It waits for the service's background workers; it measures nothing.
func eventually(t *testing.T, within time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
