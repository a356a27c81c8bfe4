package predict_test

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/predict"
)

// The CDNOW sample: calibration weeks 1 to 39, holdout weeks 40 to 78.
var (
	calibrationEnd = time.Date(1997, 9, 30, 0, 0, 0, 0, time.UTC)
	holdoutEnd     = time.Date(1998, 6, 30, 0, 0, 0, 0, time.UTC)
)

// loadCDNOW reads testdata/cdnow/CDNOW_sample.txt: master id, sample id,
// date, number of CDs, dollar value.
func loadCDNOW(t *testing.T) []predict.Transaction {
	t.Helper()
	f, err := os.Open("testdata/cdnow/CDNOW_sample.txt")
	require.NoError(t, err)
	defer f.Close()
	var txs []predict.Transaction
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		require.Len(t, fs, 5, "line %q", sc.Text())
		at, err := time.Parse("20060102", fs[2])
		require.NoError(t, err)
		v, err := strconv.ParseFloat(fs[4], 64)
		require.NoError(t, err)
		txs = append(txs, predict.Transaction{Customer: fs[1], At: at, Value: v})
	}
	require.NoError(t, sc.Err())
	require.Len(t, txs, 6919)
	return txs
}

func fitCDNOW(t *testing.T) (*predict.Model, []predict.Summary, []predict.Transaction) {
	t.Helper()
	txs := loadCDNOW(t)
	sums := predict.Summarize(txs, calibrationEnd)
	require.Len(t, sums, 2357)
	m, err := predict.Fit(context.Background(), sums, nil)
	require.NoError(t, err)
	return m, sums, txs
}

// TestFitCDNOW reproduces the published fits on the CDNOW sample: BG/NBD
// (Fader, Hardie and Lee 2005) to 3 decimals and its log-likelihood to
// 0.1, Gamma-Gamma (Fader and Hardie 2013) to 2 decimals.
func TestFitCDNOW(t *testing.T) {
	m, sums, _ := fitCDNOW(t)
	t.Logf("BG/NBD %+v LL %.4f; Gamma-Gamma %+v; %d iterations", m.Transactions, m.LogLikelihood, m.Spend, m.Iterations)
	round := func(v float64, places int) float64 {
		s := math.Pow(10, float64(places))
		return math.Round(v*s) / s
	}
	require.Equal(t, 0.243, round(m.Transactions.R, 3))
	require.Equal(t, 4.414, round(m.Transactions.Alpha, 3))
	require.Equal(t, 0.793, round(m.Transactions.A, 3))
	require.Equal(t, 2.426, round(m.Transactions.B, 3))
	require.Equal(t, -9582.4, round(m.LogLikelihood, 1))
	require.Equal(t, 946, m.Repeaters)
	require.Equal(t, 6.25, round(m.Spend.P, 2))
	require.Equal(t, 3.74, round(m.Spend.Q, 2))
	require.Equal(t, 15.44, round(m.Spend.Gamma, 2))

	// The summed likelihood equals the one-customer formula summed.
	var ll float64
	for _, s := range sums {
		ll += m.Transactions.LogLikelihood(s.X, s.Recency, s.Age)
	}
	require.InDelta(t, m.LogLikelihood, ll, 1e-6)
}

// TestHoldoutCDNOW compares the expected repeat transactions in weeks 40
// to 78 with what the customers did, in total and by the number of repeat
// transactions in calibration (the conditional expectations of Fader,
// Hardie and Lee 2005, figure 5).
func TestHoldoutCDNOW(t *testing.T) {
	m, sums, txs := fitCDNOW(t)
	// Repeat transactions in the holdout: distinct purchase days after
	// the calibration end; every customer's first purchase is in weeks 1
	// to 12.
	days := map[string]map[time.Time]bool{}
	for _, tx := range txs {
		if tx.At.After(calibrationEnd) && !tx.At.After(holdoutEnd) {
			if days[tx.Customer] == nil {
				days[tx.Customer] = map[time.Time]bool{}
			}
			days[tx.Customer][tx.At] = true
		}
	}
	holdout := holdoutEnd.Sub(calibrationEnd).Hours() / 24 / 7
	require.Equal(t, 39.0, holdout)

	const groups = 8 // x = 0 to 6, then 7 or more
	var n [groups]int
	var actual, expected [groups]float64
	for _, s := range sums {
		g := min(s.X, groups-1)
		e, err := m.Transactions.ConditionalExpected(holdout, s.X, s.Recency, s.Age)
		require.NoError(t, err)
		n[g]++
		expected[g] += e
		actual[g] += float64(len(days[s.Customer]))
	}
	var totalActual, totalExpected float64
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-4s %6s %14s %14s %14s %14s\n", "x", "n", "actual", "expected", "actual/cust", "expected/cust")
	for g := range groups {
		label := strconv.Itoa(g)
		if g == groups-1 {
			label += "+"
		}
		fmt.Fprintf(&table, "%-4s %6d %14.1f %14.1f %14.3f %14.3f\n", label, n[g], actual[g], expected[g], actual[g]/float64(n[g]), expected[g]/float64(n[g]))
		totalActual += actual[g]
		totalExpected += expected[g]
		// The groups of at least 100 customers stay within 30% of the
		// actual per-customer mean (the model is 25% under at x = 1 and 2).
		if n[g] >= 100 {
			require.InEpsilon(t, actual[g], expected[g], 0.30, "x = %s", label)
		}
	}
	fmt.Fprintf(&table, "%-4s %6d %14.1f %14.1f %14.3f %14.3f", "all", len(sums), totalActual, totalExpected, totalActual/float64(len(sums)), totalExpected/float64(len(sums)))
	t.Log(table.String())
	// The data: 1,882 repeat purchase days in weeks 40 to 78. The model
	// expects 1,653.4, 12% fewer: it tracks the frequent buyers (x >= 3)
	// within 10% and under-forecasts the one- and two-time repeaters.
	require.Equal(t, 1882.0, totalActual)
	require.InDelta(t, 1653.4, totalExpected, 0.1)
	require.InEpsilon(t, totalActual, totalExpected, 0.15)
}
