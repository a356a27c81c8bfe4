package predict

import (
	"fmt"
	"math"
	"time"
)

// Prediction is what a Model expects of one customer.
type Prediction struct {
	// PAlive is the probability that the customer is still active.
	PAlive float64
	// ExpectedOrders30, ExpectedOrders90 and ExpectedOrders365 are the
	// expected numbers of orders in the next 30, 90 and 365 days.
	ExpectedOrders30, ExpectedOrders90, ExpectedOrders365 float64
	// NextOrderIn is the median wait for the next order if the customer is
	// still active (see BGNBD.NextOrderIn), at most MaxNextOrderIn; weigh
	// it with PAlive.
	NextOrderIn time.Duration
	// ExpectedNextOrderAt is the as-of time of the prediction plus
	// NextOrderIn.
	ExpectedNextOrderAt time.Time
	// AvgValue is the expected value of one future order (Gamma-Gamma).
	// It is 0, unknown, for a customer without a repeat transaction when
	// the fitted q is at most 1 (the population mean value is then
	// infinite).
	AvgValue float64
	// ExpectedValue12m is the expected value of the orders of the next 365
	// days: ExpectedOrders365 times AvgValue, undiscounted; 0 when
	// AvgValue is unknown.
	ExpectedValue12m float64
}

// MaxNextOrderIn caps Prediction.NextOrderIn: a median wait beyond a
// century says the same as a century.
const MaxNextOrderIn = 100 * 365 * 24 * time.Hour

// weeksOf converts days into the weeks of the models.
func weeksOf(days float64) float64 { return days / daysPerWeek }

// Predict returns the prediction for a customer summarised up to asOf
// (the end of the customer's calibration period, the point the summary's
// Age is measured to). It returns ErrTooLittleHistory for a customer
// younger than the model's MinAge. It is safe for concurrent use.
func (m *Model) Predict(s Summary, asOf time.Time) (Prediction, error) {
	if err := s.Validate(); err != nil {
		return Prediction{}, fmt.Errorf("predict: %w", err)
	}
	if s.Age < m.MinAge {
		return Prediction{}, fmt.Errorf("predict %q: age %.1f weeks under %.1f: %w", s.Customer, s.Age, m.MinAge, ErrTooLittleHistory)
	}
	bg := m.Transactions
	p := Prediction{PAlive: bg.PAlive(s.X, s.Recency, s.Age)}
	for _, h := range []struct {
		days float64
		dst  *float64
	}{{30, &p.ExpectedOrders30}, {90, &p.ExpectedOrders90}, {365, &p.ExpectedOrders365}} {
		e, err := bg.ConditionalExpected(weeksOf(h.days), s.X, s.Recency, s.Age)
		if err != nil {
			return Prediction{}, fmt.Errorf("predict %q over %g days: %w", s.Customer, h.days, err)
		}
		*h.dst = e
	}
	const week = float64(7 * 24 * time.Hour)
	weeks := bg.NextOrderIn(s.X, s.Age)
	p.NextOrderIn = time.Duration(math.Min(weeks, float64(MaxNextOrderIn)/week) * week)
	p.ExpectedNextOrderAt = asOf.Add(p.NextOrderIn)
	if v := m.Spend.ConditionalExpected(s.X, s.AvgValue); !math.IsNaN(v) {
		p.AvgValue = v
		p.ExpectedValue12m = p.ExpectedOrders365 * v
	}
	return p, nil
}
