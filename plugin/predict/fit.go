package predict

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/optimize"
)

// Errors of the package.
var (
	// ErrNotConverged reports a fit whose optimiser stopped before finding
	// a maximum of the likelihood; the previous fit should stay in use.
	ErrNotConverged = errors.New("fit did not converge")
	// ErrTooLittleHistory reports too few customers for a fit, or a
	// customer too young for a prediction.
	ErrTooLittleHistory = errors.New("too little history")
)

// Defaults of FitOpts.
const (
	// DefaultMinCustomers is the least number of customers for a fit.
	DefaultMinCustomers = 100
	// DefaultMinRepeaters is the least number of customers with a repeat
	// transaction for a fit.
	DefaultMinRepeaters = 30
	// DefaultMinAge is the least age, in weeks, of a customer who gets a
	// prediction.
	DefaultMinAge = 4
	// DefaultMaxIterations bounds the iterations of each optimisation.
	DefaultMaxIterations = 500
)

// FitOpts tunes Fit; the zero value (or nil) means the defaults.
type FitOpts struct {
	// MinCustomers is the least number of customers for a fit; default
	// DefaultMinCustomers.
	MinCustomers int
	// MinRepeaters is the least number of customers with a repeat
	// transaction (and a positive average value) for a fit; default
	// DefaultMinRepeaters.
	MinRepeaters int
	// MinAge is the least age, in weeks, of a customer who gets a
	// prediction; default DefaultMinAge.
	MinAge float64
	// MaxIterations bounds the iterations of each of the two
	// optimisations; reaching it is ErrNotConverged. Default
	// DefaultMaxIterations.
	MaxIterations int
	// Workers is the number of goroutines that share the likelihood;
	// default GOMAXPROCS.
	Workers int
}

func (o *FitOpts) withDefaults() FitOpts {
	var v FitOpts
	if o != nil {
		v = *o
	}
	if v.MinCustomers <= 0 {
		v.MinCustomers = DefaultMinCustomers
	}
	if v.MinRepeaters <= 0 {
		v.MinRepeaters = DefaultMinRepeaters
	}
	if v.MinAge <= 0 {
		v.MinAge = DefaultMinAge
	}
	if v.MaxIterations <= 0 {
		v.MaxIterations = DefaultMaxIterations
	}
	if v.Workers <= 0 {
		v.Workers = runtime.GOMAXPROCS(0)
	}
	return v
}

// Model is a fitted pair of models, ready to predict.
type Model struct {
	// Transactions is the BG/NBD fit.
	Transactions BGNBD
	// Spend is the Gamma-Gamma fit.
	Spend GammaGamma
	// LogLikelihood is the BG/NBD log-likelihood at the fit, summed over
	// the customers.
	LogLikelihood float64
	// SpendLogLikelihood is the Gamma-Gamma log-likelihood at the fit,
	// summed over the repeat customers.
	SpendLogLikelihood float64
	// Iterations is the number of optimiser iterations of the two fits
	// together.
	Iterations int
	// Customers and Repeaters count the customers of the BG/NBD and the
	// Gamma-Gamma fits.
	Customers, Repeaters int
	// MinAge is the least age, in weeks, of a customer who gets a
	// prediction.
	MinAge float64
}

// Fit fits BG/NBD on all the summaries and Gamma-Gamma on those with a
// repeat transaction and a positive average value. It returns
// ErrTooLittleHistory when there are too few of either, an error wrapping
// ErrNotConverged when an optimisation stops before a maximum, and the
// context error when ctx ends first.
func Fit(ctx context.Context, summaries []Summary, opts *FitOpts) (*Model, error) {
	o := opts.withDefaults()
	bg := bgData{x: make([]int32, len(summaries)), tx: make([]float64, len(summaries)), T: make([]float64, len(summaries))}
	var gg ggData
	for i, s := range summaries {
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("fit: %w", err)
		}
		bg.x[i], bg.tx[i], bg.T[i] = int32(s.X), s.Recency, s.Age
		if s.X > bg.maxX {
			bg.maxX = s.X
		}
		if s.X > 0 && s.AvgValue > 0 {
			gg.x = append(gg.x, int32(s.X))
			gg.m = append(gg.m, s.AvgValue)
			gg.logm = append(gg.logm, math.Log(s.AvgValue))
			if s.X > gg.maxX {
				gg.maxX = s.X
			}
		}
	}
	if len(summaries) < o.MinCustomers || len(gg.x) < o.MinRepeaters {
		return nil, fmt.Errorf("fit %d customers, %d with repeat transactions (need %d and %d): %w",
			len(summaries), len(gg.x), o.MinCustomers, o.MinRepeaters, ErrTooLittleHistory)
	}
	bg.workers, gg.workers = o.Workers, o.Workers

	m := &Model{Customers: len(summaries), Repeaters: len(gg.x), MinAge: o.MinAge}
	x, ll, iters, err := maximize(ctx, bg.logLik, []float64{1, 1, 1, 1}, o.MaxIterations)
	m.Iterations += iters
	if err != nil {
		return nil, fmt.Errorf("fit BG/NBD: %w", err)
	}
	m.Transactions = BGNBD{R: x[0], Alpha: x[1], A: x[2], B: x[3]}
	m.LogLikelihood = ll
	x, ll, iters, err = maximize(ctx, gg.logLik, []float64{1, 1, 1}, o.MaxIterations)
	m.Iterations += iters
	if err != nil {
		return nil, fmt.Errorf("fit Gamma-Gamma: %w", err)
	}
	m.Spend = GammaGamma{P: x[0], Q: x[1], Gamma: x[2]}
	m.SpendLogLikelihood = ll
	return m, nil
}

// logLikFunc returns the total log-likelihood at the parameters and, when
// grad is not nil, stores its gradient with respect to the parameters.
type logLikFunc func(params, grad []float64) float64

// maximize maximises ll over positive parameters, starting from start. It
// minimises the mean negative log-likelihood over the logarithms of the
// parameters with BFGS and the analytic gradient; the mean keeps the
// gradient threshold independent of the number of customers.
func maximize(ctx context.Context, ll logLikFunc, start []float64, maxIter int) ([]float64, float64, int, error) {
	dim := len(start)
	var (
		lastX    = make([]float64, dim)
		lastG    = make([]float64, dim)
		lastF    float64
		haveLast bool
		params   = make([]float64, dim)
		scale    = 1.0
	)
	eval := func(y []float64) {
		if haveLast && equal(y, lastX) {
			return
		}
		for i, v := range y {
			params[i] = math.Exp(v)
		}
		f := ll(params, lastG)
		// Chain rule: d/dlog(p) = p d/dp; negated and averaged.
		for i := range lastG {
			lastG[i] = -lastG[i] * params[i] / scale
		}
		lastF = -f / scale
		if math.IsNaN(lastF) {
			lastF = math.Inf(1)
		}
		copy(lastX, y)
		haveLast = true
	}
	// The scale is the size of the sample, read once from the start.
	scale = math.Abs(ll(start, nil))
	if !(scale > 0) || math.IsInf(scale, 0) {
		scale = 1
	}
	problem := optimize.Problem{
		Func: func(y []float64) float64 {
			eval(y)
			return lastF
		},
		Grad: func(g, y []float64) {
			eval(y)
			copy(g, lastG)
		},
	}
	settings := &optimize.Settings{
		GradientThreshold: stopGradient,
		MajorIterations:   maxIter,
		Converger:         &optimize.FunctionConverge{Absolute: 1e-13, Relative: 1e-13, Iterations: 50},
		Recorder:          ctxRecorder{ctx},
	}
	y0 := make([]float64, dim)
	for i, v := range start {
		y0[i] = math.Log(v)
	}
	res, err := optimize.Minimize(problem, y0, settings, &optimize.BFGS{})
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, 0, 0, ctxErr
	}
	if res == nil {
		return nil, 0, 0, fmt.Errorf("%w: %v", ErrNotConverged, err)
	}
	iters := res.Stats.MajorIterations
	if err != nil && flat(res.Gradient, acceptGradient) {
		// The line search fails when the mean log-likelihood no longer
		// changes in float64 at the precision of the gradient: a maximum.
		err = nil
		res.Status = optimize.GradientThreshold
	}
	if err != nil {
		return nil, 0, iters, fmt.Errorf("%w after %d iterations: %v", ErrNotConverged, iters, err)
	}
	switch res.Status {
	case optimize.GradientThreshold, optimize.FunctionConvergence, optimize.Success, optimize.MethodConverge:
	default:
		return nil, 0, iters, fmt.Errorf("%w after %d iterations: %v", ErrNotConverged, iters, res.Status)
	}
	out := make([]float64, dim)
	for i, v := range res.X {
		out[i] = math.Exp(v)
	}
	f := ll(out, nil)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, 0, iters, fmt.Errorf("%w: log-likelihood %g at the optimum", ErrNotConverged, f)
	}
	return out, f, iters, nil
}

// Gradient thresholds, on the mean log-likelihood in log-parameters:
// stopGradient ends the optimisation; a failed line search is still a
// maximum under acceptGradient. Beyond about 1e-8 the change of a mean
// log-likelihood near 1 along a step is below float64 precision, so a
// tighter threshold would make the line search fail; at 1e-7 the
// parameters are within about 1e-6 of their relative precision.
const (
	stopGradient   = 1e-7
	acceptGradient = 1e-6
)

// flat reports whether every component of g is under tol.
func flat(g []float64, tol float64) bool {
	if len(g) == 0 {
		return false
	}
	for _, v := range g {
		if !(math.Abs(v) < tol) {
			return false
		}
	}
	return true
}

func equal(a, b []float64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ctxRecorder stops the optimisation when the context ends.
type ctxRecorder struct{ ctx context.Context }

func (r ctxRecorder) Init() error { return nil }

func (r ctxRecorder) Record(*optimize.Location, optimize.Operation, *optimize.Stats) error {
	return r.ctx.Err()
}

// parallel splits [0, n) into one range per worker, runs fn on each with
// its own gradient accumulator and returns the sums. Small inputs run on
// the calling goroutine.
func parallel(n, workers, dim int, fn func(lo, hi int, g []float64) float64) (float64, []float64) {
	if workers < 1 || n < 20000 {
		workers = 1
	}
	fs := make([]float64, workers)
	gs := make([][]float64, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		gs[w] = make([]float64, dim)
		lo, hi := n*w/workers, n*(w+1)/workers
		if workers == 1 {
			fs[w] = fn(lo, hi, gs[w])
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fs[w] = fn(lo, hi, gs[w])
		}()
	}
	wg.Wait()
	var f float64
	g := make([]float64, dim)
	for w := range fs {
		f += fs[w]
		for i := range g {
			g[i] += gs[w][i]
		}
	}
	return f, g
}

// bgData is the BG/NBD sample in columns.
type bgData struct {
	x       []int32
	tx, T   []float64
	maxX    int
	workers int
}

// logLik returns the BG/NBD log-likelihood and its gradient in (r, alpha,
// a, b). Everything that depends only on x is computed once per distinct
// x; per customer remain two logarithms and a log-sum-exp.
func (d *bgData) logLik(p, grad []float64) float64 {
	r, alpha, a, b := p[0], p[1], p[2], p[3]
	n := d.maxX + 1
	// Per x: the constant part of the log-likelihood, its gradient, and
	// log(a/(b+x-1)).
	cst := make([]float64, n)
	cg := make([][4]float64, n)
	logA4 := make([]float64, n)
	lgr, _ := math.Lgamma(r)
	lgab, _ := math.Lgamma(a + b)
	lgb, _ := math.Lgamma(b)
	psir, psiab, psib := mathext.Digamma(r), mathext.Digamma(a+b), mathext.Digamma(b)
	logAlpha := math.Log(alpha)
	for x := 0; x < n; x++ {
		fx := float64(x)
		lgrx, _ := math.Lgamma(r + fx)
		lgbx, _ := math.Lgamma(b + fx)
		lgabx, _ := math.Lgamma(a + b + fx)
		cst[x] = lgrx - lgr + r*logAlpha + lgab + lgbx - lgb - lgabx
		if grad != nil {
			psiabx := mathext.Digamma(a + b + fx)
			cg[x] = [4]float64{
				mathext.Digamma(r+fx) - psir + logAlpha,
				r / alpha,
				psiab - psiabx,
				psiab + mathext.Digamma(b+fx) - psib - psiabx,
			}
		}
		if x > 0 {
			logA4[x] = math.Log(a) - math.Log(b+fx-1)
		}
	}
	f, g := parallel(len(d.x), d.workers, 4, func(lo, hi int, g []float64) float64 {
		var f float64
		for i := lo; i < hi; i++ {
			x := d.x[i]
			rx := r + float64(x)
			lT := math.Log(alpha + d.T[i])
			a3 := -rx * lT
			if x == 0 {
				f += cst[0] + a3
				if grad != nil {
					c := &cg[0]
					g[0] += c[0] - lT
					g[1] += c[1] - rx/(alpha+d.T[i])
					g[2] += c[2]
					g[3] += c[3]
				}
				continue
			}
			ltx := math.Log(alpha + d.tx[i])
			a4 := logA4[x] - rx*ltx
			s := logSumExp(a3, a4)
			f += cst[x] + s
			if grad != nil {
				w4 := math.Exp(a4 - s)
				w3 := 1 - w4
				c := &cg[x]
				g[0] += c[0] - w3*lT - w4*ltx
				g[1] += c[1] - rx*(w3/(alpha+d.T[i])+w4/(alpha+d.tx[i]))
				g[2] += c[2] + w4/a
				g[3] += c[3] - w4/(b+float64(x)-1)
			}
		}
		return f
	})
	if grad != nil {
		copy(grad, g)
	}
	return f
}

// ggData is the Gamma-Gamma sample in columns.
type ggData struct {
	x       []int32
	m, logm []float64
	maxX    int
	workers int
}

// logLik returns the Gamma-Gamma log-likelihood and its gradient in (p,
// q, gamma).
func (d *ggData) logLik(par, grad []float64) float64 {
	p, q, gamma := par[0], par[1], par[2]
	n := d.maxX + 1
	cst := make([]float64, n)
	cg := make([][2]float64, n)
	lgq, _ := math.Lgamma(q)
	psiq := mathext.Digamma(q)
	logGamma := math.Log(gamma)
	for x := 1; x < n; x++ {
		fx := float64(x)
		px := p * fx
		lgpq, _ := math.Lgamma(px + q)
		lgp, _ := math.Lgamma(px)
		cst[x] = lgpq - lgp - lgq + q*logGamma + px*math.Log(fx)
		if grad != nil {
			psipq := mathext.Digamma(px + q)
			cg[x] = [2]float64{fx * (psipq - mathext.Digamma(px) + math.Log(fx)), psipq - psiq + logGamma}
		}
	}
	f, g := parallel(len(d.x), d.workers, 3, func(lo, hi int, g []float64) float64 {
		var f float64
		for i := lo; i < hi; i++ {
			fx := float64(d.x[i])
			px := p * fx
			den := gamma + fx*d.m[i]
			lden := math.Log(den)
			f += cst[d.x[i]] + (px-1)*d.logm[i] - (px+q)*lden
			if grad != nil {
				c := &cg[d.x[i]]
				g[0] += c[0] + fx*(d.logm[i]-lden)
				g[1] += c[1] - lden
				g[2] += q/gamma - (px+q)/den
			}
		}
		return f
	})
	if grad != nil {
		copy(grad, g)
	}
	return f
}
