package predict

import (
	"fmt"
	"math"
)

// BGNBD holds the parameters of the BG/NBD model of repeat transactions,
// time in weeks.
type BGNBD struct {
	// R and Alpha are the shape and rate (per week) of the gamma
	// distribution of the purchase rates across customers.
	R, Alpha float64
	// A and B are the parameters of the beta distribution of the dropout
	// probabilities across customers.
	A, B float64
}

// valid reports whether every parameter is positive and finite.
func (p BGNBD) valid() bool {
	for _, v := range []float64{p.R, p.Alpha, p.A, p.B} {
		if !(v > 0) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// LogLikelihood returns the log-likelihood of one customer (Fader, Hardie
// and Lee 2005, equation 6):
//
//	L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
//	  + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))
//
// computed as the log of the common factor plus the log-sum-exp of the two
// terms.
func (p BGNBD) LogLikelihood(x int, tx, T float64) float64 {
	fx := float64(x)
	lgrx, _ := math.Lgamma(p.R + fx)
	lgr, _ := math.Lgamma(p.R)
	lgab, _ := math.Lgamma(p.A + p.B)
	lgbx, _ := math.Lgamma(p.B + fx)
	lgb, _ := math.Lgamma(p.B)
	lgabx, _ := math.Lgamma(p.A + p.B + fx)
	ll := lgrx - lgr + p.R*math.Log(p.Alpha) + lgab + lgbx - lgb - lgabx
	a3 := -(p.R + fx) * math.Log(p.Alpha+T)
	if x == 0 {
		return ll + a3
	}
	a4 := math.Log(p.A) - math.Log(p.B+fx-1) - (p.R+fx)*math.Log(p.Alpha+tx)
	return ll + logSumExp(a3, a4)
}

// logSumExp returns log(exp(u) + exp(v)) without overflow.
func logSumExp(u, v float64) float64 {
	if u < v {
		u, v = v, u
	}
	return u + math.Log1p(math.Exp(v-u))
}

// PAlive returns the probability that a customer with x repeat
// transactions, the last at t_x, and age T, is still active (Fader, Hardie
// and Lee, "Computing P(alive) using the BG/NBD model", 2008):
//
//	P = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))
func (p BGNBD) PAlive(x int, tx, T float64) float64 {
	if x == 0 {
		return 1
	}
	fx := float64(x)
	logOdds := math.Log(p.A) - math.Log(p.B+fx-1) + (p.R+fx)*(math.Log(p.Alpha+T)-math.Log(p.Alpha+tx))
	// 1/(1+e^l) written to stay finite for any l.
	if logOdds > 0 {
		e := math.Exp(-logOdds)
		return e / (1 + e)
	}
	return 1 / (1 + math.Exp(logOdds))
}

// ConditionalExpected returns the expected number of transactions in the
// next t weeks of a customer with x repeat transactions, the last at t_x,
// and age T (Fader, Hardie and Lee 2005, equation 10):
//
//	E[Y(t)] = (a+b+x-1)/(a-1)
//	        * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
//	        / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))
//
// The power and the hypergeometric function are multiplied in log space.
// At a = 1 exactly the formula is 0/0; a is then nudged by a relative
// 1e-9, far below the precision of any fit.
func (p BGNBD) ConditionalExpected(t float64, x int, tx, T float64) (float64, error) {
	if t <= 0 {
		return 0, nil
	}
	if p.A == 1 {
		p.A = 1 + 1e-9
	}
	fx := float64(x)
	z := t / (p.Alpha + T + t)
	c := p.A + p.B + fx - 1
	if c <= 0 {
		// Only possible for x = 0 with a+b < 1, where the series has
		// terms of both signs; no fit of real data has landed there.
		return math.NaN(), fmt.Errorf("expected transactions: a+b-1 = %g is not positive", c)
	}
	lh, err := logHyp2F1(p.R+fx, p.B+fx, c, z)
	if err != nil {
		return math.NaN(), fmt.Errorf("expected transactions: %w", err)
	}
	logTerm := (p.R+fx)*(math.Log(p.Alpha+T)-math.Log(p.Alpha+T+t)) + lh
	// 1 - e^logTerm, accurate when logTerm is close to 0 (short horizons).
	bracket := -math.Expm1(logTerm)
	return (c / (p.A - 1)) * bracket * p.PAlive(x, tx, T), nil
}

// NextOrderIn returns the median time, in weeks, to the next transaction
// of a customer who is still active, with x repeat transactions and age
// T. While active, the customer buys at a rate whose posterior is
// gamma(r+x, alpha+T), so the waiting time follows a Lomax distribution
// and its median is (alpha+T)(2^(1/(r+x)) - 1). Whether the customer is
// still active is the separate PAlive.
func (p BGNBD) NextOrderIn(x int, T float64) float64 {
	return (p.Alpha + T) * math.Expm1(math.Ln2/(p.R+float64(x)))
}
