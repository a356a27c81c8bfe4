package predict

import "math"

// GammaGamma holds the parameters of the Gamma-Gamma model of the average
// transaction value.
type GammaGamma struct {
	// P is the shape of the gamma distribution of one transaction value
	// around the customer's mean.
	P float64
	// Q and Gamma are the shape and rate of the gamma distribution, across
	// customers, of the rate of the value distribution.
	Q, Gamma float64
}

// valid reports whether every parameter is positive and finite.
func (g GammaGamma) valid() bool {
	for _, v := range []float64{g.P, g.Q, g.Gamma} {
		if !(v > 0) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// LogLikelihood returns the log-likelihood of the average value m of x
// transactions (Fader and Hardie 2013, equation 3, the density of the
// average):
//
//	f(m) = G(px+q)/(G(px) G(q)) gamma^q m^(px-1) x^(px) / (gamma + m x)^(px+q)
func (g GammaGamma) LogLikelihood(x int, m float64) float64 {
	px := g.P * float64(x)
	lgpq, _ := math.Lgamma(px + g.Q)
	lgp, _ := math.Lgamma(px)
	lgq, _ := math.Lgamma(g.Q)
	return lgpq - lgp - lgq + g.Q*math.Log(g.Gamma) + (px-1)*math.Log(m) +
		px*math.Log(float64(x)) - (px+g.Q)*math.Log(g.Gamma+m*float64(x))
}

// ConditionalExpected returns the expected average transaction value of a
// customer whose x repeat transactions averaged m (Fader and Hardie 2013,
// equation 5): p(gamma + x m)/(px + q - 1), a weighted mean of the
// population mean p gamma/(q-1) and m. With x = 0 it is the population
// mean, which exists only for q > 1; otherwise it returns NaN.
func (g GammaGamma) ConditionalExpected(x int, m float64) float64 {
	d := g.P*float64(x) + g.Q - 1
	if d <= 0 {
		return math.NaN()
	}
	return g.P * (g.Gamma + float64(x)*m) / d
}
