package loader

import (
	"os"
	"testing"

	"github.com/verdict-authz/verdict/test/pgtest"
)

// TestMain stops the throwaway PostgreSQL cluster the fleet tests may
// start (see test/pgtest).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
