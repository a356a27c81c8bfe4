package predict

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mathext"
)

// TestLogHyp2F1 checks the rescaled series against the Cephes-based
// gonum function where both are finite, and against the closed form
// 2F1(a, b; b; z) = (1-z)^-a where the value overflows a float64.
func TestLogHyp2F1(t *testing.T) {
	for _, c := range [][4]float64{
		{0.243, 2.426, 2.219, 0.5},
		{2.243, 4.426, 4.219, 0.9},
		{10.2, 12.4, 12.2, 0.3},
		{30.2, 32.4, 32.2, 0.85},
		{0.5, 0.5, 1.5, 0.99},
	} {
		got, err := logHyp2F1(c[0], c[1], c[2], c[3])
		require.NoError(t, err)
		want := math.Log(mathext.Hypergeo(c[0], c[1], c[2], c[3]))
		require.InDelta(t, want, got, 1e-10*math.Max(1, math.Abs(want)), "%v", c)
	}
	got, err := logHyp2F1(500, 300, 300, 0.9)
	require.NoError(t, err)
	require.InDelta(t, -500*math.Log(0.1), got, 1e-9)
	require.False(t, math.IsInf(got, 0))

	_, err = logHyp2F1(1, 1, 1, 1)
	require.Error(t, err)
}

// TestGradients checks the analytic gradients of both likelihoods
// against central finite differences.
func TestGradients(t *testing.T) {
	bg := &bgData{
		x:  []int32{0, 1, 2, 5, 0, 12},
		tx: []float64{0, 3.5, 20, 30.1, 0, 38},
		T:  []float64{38.9, 30, 25, 35, 27.5, 38.5},
	}
	bg.maxX = 12
	gg := &ggData{x: []int32{1, 2, 5, 12}, m: []float64{10, 35.5, 22, 41}}
	gg.maxX = 12
	for _, m := range gg.m {
		gg.logm = append(gg.logm, math.Log(m))
	}
	for _, c := range []struct {
		ll logLikFunc
		at []float64
	}{
		{bg.logLik, []float64{0.243, 4.414, 0.793, 2.426}},
		{bg.logLik, []float64{1.5, 0.7, 2.1, 0.9}},
		{gg.logLik, []float64{6.25, 3.74, 15.44}},
		{gg.logLik, []float64{0.8, 1.7, 3}},
	} {
		got := make([]float64, len(c.at))
		c.ll(c.at, got)
		want := fd.Gradient(nil, func(p []float64) float64 { return c.ll(p, nil) }, c.at, &fd.Settings{Formula: fd.Central})
		for i := range want {
			require.InDelta(t, want[i], got[i], 1e-5*math.Max(1, math.Abs(want[i])), "parameter %d at %v", i, c.at)
		}
	}
}

// TestLogLikelihoodColumns checks that the columnar likelihood of Fit is
// the sum of the one-customer formulas.
func TestLogLikelihoodColumns(t *testing.T) {
	p := BGNBD{R: 0.5, Alpha: 3, A: 1.2, B: 2}
	bg := &bgData{x: []int32{0, 3, 1}, tx: []float64{0, 10, 2}, T: []float64{20, 15, 9}, maxX: 3}
	var want float64
	for i := range bg.x {
		want += p.LogLikelihood(int(bg.x[i]), bg.tx[i], bg.T[i])
	}
	require.InDelta(t, want, bg.logLik([]float64{p.R, p.Alpha, p.A, p.B}, nil), 1e-9)

	g := GammaGamma{P: 2, Q: 3, Gamma: 10}
	gg := &ggData{x: []int32{1, 4}, m: []float64{12, 30}, logm: []float64{math.Log(12), math.Log(30)}, maxX: 4}
	want = g.LogLikelihood(1, 12) + g.LogLikelihood(4, 30)
	require.InDelta(t, want, gg.logLik([]float64{g.P, g.Q, g.Gamma}, nil), 1e-9)
}
