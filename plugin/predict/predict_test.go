package predict_test

import (
	"bufio"
	"context"
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
