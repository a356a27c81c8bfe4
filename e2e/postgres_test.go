package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pgCluster is a private PostgreSQL cluster under /tmp that a test may stop
// and start at will (the shared test server is never restarted).
type pgCluster struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	// asPostgres: running as root, the server runs as the postgres user.
	asPostgres bool
	URL        string
}

// pgBin finds the PostgreSQL server programs: on PATH, or Debian's
// /usr/lib/postgresql/<version>/bin.
func pgBin() string {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

// startPrivatePostgres creates and starts a throwaway cluster (trust
// authentication on 127.0.0.1, no fsync). Without PostgreSQL's server
// programs the test is skipped, unless REFRAIN_REQUIRE_POSTGRES_CLUSTER is
// set.
func startPrivatePostgres(t *testing.T) *pgCluster {
	t.Helper()
	bin := pgBin()
	if bin == "" {
		if os.Getenv("REFRAIN_REQUIRE_POSTGRES_CLUSTER") != "" {
			t.Fatal("initdb and pg_ctl not found (install postgresql)")
		}
		t.Skip("initdb and pg_ctl not found: the database restart fault needs a private PostgreSQL cluster")
	}
	dir, err := os.MkdirTemp("/tmp", "refrain-e2e-pg-")
	require.NoError(t, err)
	c := &pgCluster{t: t, bin: bin, dir: dir, port: freePort(t), asPostgres: os.Geteuid() == 0}
	t.Cleanup(func() {
		_ = c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop")
		_ = os.RemoveAll(dir)
	})
	if c.asPostgres {
		require.NoError(t, exec.Command("chown", "postgres:postgres", dir).Run())
	}
	out, err := c.output("initdb", "-D", c.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	require.NoError(t, err, "initdb: %s", out)
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	c.start()
	return c
}

func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

func (c *pgCluster) command(name string, args ...string) *exec.Cmd {
	prog := filepath.Join(c.bin, name)
	if c.asPostgres {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", prog}, args...)...)
	}
	return exec.Command(prog, args...)
}

func (c *pgCluster) output(name string, args ...string) ([]byte, error) {
	return c.command(name, args...).CombinedOutput()
}

func (c *pgCluster) run(name string, args ...string) error {
	_, err := c.output(name, args...)
	return err
}

// start starts the server and waits until it accepts connections.
func (c *pgCluster) start() {
	c.t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c full_page_writes=off -c max_connections=60", c.port)
	out, err := c.output("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "log"), "-o", opts, "-w", "-t", "60", "start")
	require.NoError(c.t, err, "pg_ctl start: %s", out)
}

// stop stops the server at once, as a crash or a failover would (clients
// see their connections drop).
func (c *pgCluster) stop() {
	c.t.Helper()
	out, err := c.output("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop")
	require.NoError(c.t, err, "pg_ctl stop: %s", out)
}

// restart stops the server, keeps it down for a while, and starts it again.
func (c *pgCluster) restart(down time.Duration, whileDown func()) {
	c.t.Helper()
	c.stop()
	if whileDown != nil {
		whileDown()
	}
	time.Sleep(down)
	c.start()
}
