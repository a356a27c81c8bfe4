package predict

import (
	"errors"
	"math"
)

// errSeries reports a hypergeometric series that did not converge.
var errSeries = errors.New("hypergeometric series did not converge")

// hyp2f1MaxTerms bounds the series; with 0 <= z < 1 it converges
// geometrically at rate z, and the horizons and ages the package accepts
// keep z well below 1.
const hyp2f1MaxTerms = 200000

// logHyp2F1 returns the logarithm of the Gaussian hypergeometric function
// 2F1(a, b; c; z) for 0 <= z < 1 and a, b, c > 0, where every term of the
// series is positive. The series is summed with a running scale: the sum
// and the current term are kept divided by exp(logScale), so that the
// terms, which first grow like (a z)^n / n! when a and b are large (a
// frequent buyer), neither overflow nor lose the small ones.
func logHyp2F1(a, b, c, z float64) (float64, error) {
	if !(z >= 0 && z < 1) || !(a > 0 && b > 0 && c > 0) {
		return math.NaN(), errors.New("hypergeometric argument out of range")
	}
	const rescale = 1e200
	logRescale := math.Log(rescale)
	var logScale float64
	term, sum := 1.0, 1.0
	for n := 0; n < hyp2f1MaxTerms; n++ {
		fn := float64(n)
		term *= (a + fn) * (b + fn) / ((c + fn) * (fn + 1)) * z
		sum += term
		if sum > rescale {
			sum /= rescale
			term /= rescale
			logScale += logRescale
		}
		// The terms decrease from the point where the ratio drops below
		// one; only then may a small term end the sum.
		if term <= sum*1e-17 && (a+fn+1)*(b+fn+1)*z < (c+fn+1)*(fn+2) {
			return logScale + math.Log(sum), nil
		}
	}
	return math.NaN(), errSeries
}
