package predict

import (
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"
)

// Simulated is one customer drawn from the models' generative process.
type Simulated struct {
	// Summary is the customer's calibration summary, of age T.
	Summary Summary
	// Holdout is the number of repeat transactions in the holdout period
	// that follows the calibration.
	Holdout int
	// Alive reports whether the customer is still active at the end of
	// the calibration period.
	Alive bool
}

// Simulate draws one customer of age T (weeks) from the BG/NBD and
// Gamma-Gamma processes and follows it for holdout more weeks: a purchase
// rate from gamma(r, alpha), a dropout probability from beta(a, b),
// exponential waits between purchases, a dropout chance after each repeat
// purchase, and repeat values from gamma(p, nu) with nu from gamma(q,
// gamma). It is what tests and benchmarks check the formulas against.
func Simulate(rng *rand.Rand, bg BGNBD, gg GammaGamma, T, holdout float64) Simulated {
	lambda := distuv.Gamma{Alpha: bg.R, Beta: bg.Alpha, Src: rng}.Rand()
	p := distuv.Beta{Alpha: bg.A, Beta: bg.B, Src: rng}.Rand()
	out := Simulated{Summary: Summary{Age: T}, Alive: true}
	t := 0.0
	for {
		t += rng.ExpFloat64() / lambda
		if t > T+holdout {
			break
		}
		if t <= T {
			out.Summary.X++
			out.Summary.Recency = t
		} else {
			out.Holdout++
		}
		if rng.Float64() < p {
			out.Alive = t > T
			break
		}
	}
	if x := out.Summary.X; x > 0 {
		nu := distuv.Gamma{Alpha: gg.Q, Beta: gg.Gamma, Src: rng}.Rand()
		// The mean of x gamma(p, nu) values is gamma(p x, nu x).
		out.Summary.AvgValue = distuv.Gamma{Alpha: gg.P * float64(x), Beta: nu * float64(x), Src: rng}.Rand()
	}
	return out
}
