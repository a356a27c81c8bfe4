// Command predict measures the customer-base models on 1,000,000
// synthetic customers drawn (seeded) from the BG/NBD and Gamma-Gamma
// processes with the parameters published for CDNOW, aged 0 to 78 weeks
// (those under the 4 weeks of predict.DefaultMinAge get no prediction).
// As a reference in the same run it times reading the same summaries:
// decoding them from an in-memory CSV buffer, the way a fit would get
// them from an export. It then times the fit (both models) and the
// predictions for every customer, and prints the times, their ratios to
// the reference and the fitted parameters against the generating ones.
// The target is a fit under a minute.
//
//	go run ./bench/predict [-n 1000000] [-seed 1]
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/refrain-dev/refrain/plugin/predict"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("n", 1000000, "customers")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	bg := predict.BGNBD{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}
	gg := predict.GammaGamma{P: 6.25, Q: 3.74, Gamma: 15.44}

	start := time.Now()
	buf := generate(*n, *seed, bg, gg)
	fmt.Printf("customers %d, CSV %.1f MB, generated in %v, GOMAXPROCS %d\n",
		*n, float64(buf.Len())/1e6, time.Since(start).Round(time.Millisecond), runtime.GOMAXPROCS(0))

	start = time.Now()
	sums, err := decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return err
	}
	read := time.Since(start)
	repeaters := 0
	for _, s := range sums {
		if s.X > 0 {
			repeaters++
		}
	}

	start = time.Now()
	m, err := predict.Fit(context.Background(), sums, nil)
	if err != nil {
		return fmt.Errorf("fit: %w", err)
	}
	fit := time.Since(start)

	start = time.Now()
	predicted, refused, err := predictAll(m, sums)
	if err != nil {
		return err
	}
	pred := time.Since(start)

	fmt.Printf("reference: read %d summaries (%d repeaters) in %v\n", len(sums), repeaters, read.Round(time.Millisecond))
	fmt.Printf("fit:       %v (%.1fx the read), %d iterations, LL %.1f\n", fit.Round(time.Millisecond), ratio(fit, read), m.Iterations, m.LogLikelihood)
	fmt.Printf("predict:   %v (%.1fx the read) for %d customers, %d refused (too little history)\n", pred.Round(time.Millisecond), ratio(pred, read), predicted, refused)
	fmt.Printf("BG/NBD      r %.4f alpha %.4f a %.4f b %.4f (generated with r %.3f alpha %.3f a %.3f b %.3f)\n",
		m.Transactions.R, m.Transactions.Alpha, m.Transactions.A, m.Transactions.B, bg.R, bg.Alpha, bg.A, bg.B)
	fmt.Printf("Gamma-Gamma p %.4f q %.4f gamma %.4f (generated with p %.2f q %.2f gamma %.2f)\n",
		m.Spend.P, m.Spend.Q, m.Spend.Gamma, gg.P, gg.Q, gg.Gamma)
	if fit > time.Minute {
		return fmt.Errorf("fit took %v, over the minute", fit)
	}
	return nil
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// generate writes n simulated summaries as CSV: customer, x, t_x, T,
// average value.
func generate(n int, seed uint64, bg predict.BGNBD, gg predict.GammaGamma) *bytes.Buffer {
	rng := rand.New(rand.NewPCG(seed, 2))
	var buf bytes.Buffer
	buf.Grow(n * 40)
	var line []byte
	for i := range n {
		T := 78 * rng.Float64()
		s := predict.Simulate(rng, bg, gg, T, 0).Summary
		line = strconv.AppendInt(line[:0], int64(i), 10)
		line = append(line, ',')
		line = strconv.AppendInt(line, int64(s.X), 10)
		line = append(line, ',')
		line = strconv.AppendFloat(line, s.Recency, 'f', 4, 64)
		line = append(line, ',')
		line = strconv.AppendFloat(line, s.Age, 'f', 4, 64)
		line = append(line, ',')
		line = strconv.AppendFloat(line, s.AvgValue, 'f', 2, 64)
		line = append(line, '\n')
		buf.Write(line)
	}
	return &buf
}

// decode reads the summaries back: the reference the fit is compared to.
func decode(r io.Reader) ([]predict.Summary, error) {
	var out []predict.Summary
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var f [5][]byte
		rest := sc.Bytes()
		for i := range f {
			j := bytes.IndexByte(rest, ',')
			if j < 0 {
				if i != len(f)-1 {
					return nil, fmt.Errorf("decode line %d: %d fields", len(out)+1, i+1)
				}
				j = len(rest)
			}
			f[i] = rest[:j]
			rest = rest[min(j+1, len(rest)):]
		}
		x, err := strconv.Atoi(string(f[1]))
		if err != nil {
			return nil, fmt.Errorf("decode line %d: %w", len(out)+1, err)
		}
		var v [3]float64
		for i := range v {
			if v[i], err = strconv.ParseFloat(string(f[i+2]), 64); err != nil {
				return nil, fmt.Errorf("decode line %d: %w", len(out)+1, err)
			}
		}
		out = append(out, predict.Summary{Customer: string(f[0]), X: x, Recency: v[0], Age: v[1], AvgValue: v[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return out, nil
}

// predictAll predicts every customer on GOMAXPROCS goroutines and counts
// the predictions made and refused.
func predictAll(m *predict.Model, sums []predict.Summary) (int, int, error) {
	asOf := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	workers := runtime.GOMAXPROCS(0)
	done := make([]int, workers)
	refused := make([]int, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * len(sums) / workers; i < (w+1)*len(sums)/workers; i++ {
				_, err := m.Predict(sums[i], asOf)
				switch {
				case errors.Is(err, predict.ErrTooLittleHistory):
					refused[w]++
				case err != nil:
					errs[w] = err
					return
				default:
					done[w]++
				}
			}
		}()
	}
	wg.Wait()
	var d, r int
	for w := range workers {
		if errs[w] != nil {
			return 0, 0, fmt.Errorf("predict: %w", errs[w])
		}
		d += done[w]
		r += refused[w]
	}
	return d, r, nil
}
