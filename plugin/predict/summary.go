package predict

import (
	"fmt"
	"sort"
	"time"
)

// daysPerWeek converts the day counts of the transactions into the weeks
// the models are written in.
const daysPerWeek = 7

// Transaction is one purchase by one customer.
type Transaction struct {
	// Customer identifies the customer.
	Customer string
	// At is when the purchase was made; only its calendar date (in its own
	// location) matters.
	At time.Time
	// Value is the amount of the purchase.
	Value float64
}

// Summary is the repeat-purchase history of one customer over a
// calibration period, the input of the models.
type Summary struct {
	// Customer identifies the customer.
	Customer string
	// X is the number of repeat transactions: distinct purchase days after
	// the first one.
	X int
	// Recency is t_x, the time from the first purchase to the last repeat
	// purchase, in weeks; 0 when X is 0.
	Recency float64
	// Age is T, the time from the first purchase to the end of the
	// calibration period, in weeks.
	Age float64
	// AvgValue is the average value of the repeat transactions; 0 when X
	// is 0.
	AvgValue float64
}

// Validate reports whether the summary is one the models can read.
func (s Summary) Validate() error {
	switch {
	case s.X < 0:
		return fmt.Errorf("summary of %q: negative frequency %d", s.Customer, s.X)
	case !(s.Age >= 0) || !(s.Recency >= 0) || s.Recency > s.Age:
		return fmt.Errorf("summary of %q: recency %g and age %g out of order", s.Customer, s.Recency, s.Age)
	case s.X == 0 && s.Recency != 0:
		return fmt.Errorf("summary of %q: recency %g without a repeat transaction", s.Customer, s.Recency)
	case s.AvgValue < 0:
		return fmt.Errorf("summary of %q: negative average value %g", s.Customer, s.AvgValue)
	}
	return nil
}

// day is a calendar date as a day number, so that differences are whole
// days whatever the time of day or the daylight-saving changes.
func day(t time.Time) int64 {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// Summarize builds the summaries, sorted by customer, of the transactions
// made on or before the date of end (the last day of the calibration
// period); later transactions are ignored and customers whose first
// purchase is after end have no summary. Transactions of one customer on
// one calendar day count as one transaction whose value is their sum.
func Summarize(txs []Transaction, end time.Time) []Summary {
	last := day(end)
	days := map[string]map[int64]float64{}
	for _, tx := range txs {
		d := day(tx.At)
		if d > last {
			continue
		}
		byDay := days[tx.Customer]
		if byDay == nil {
			byDay = map[int64]float64{}
			days[tx.Customer] = byDay
		}
		byDay[d] += tx.Value
	}
	out := make([]Summary, 0, len(days))
	for customer, byDay := range days {
		ds := make([]int64, 0, len(byDay))
		for d := range byDay {
			ds = append(ds, d)
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		s := Summary{
			Customer: customer,
			X:        len(ds) - 1,
			Recency:  float64(ds[len(ds)-1]-ds[0]) / daysPerWeek,
			Age:      float64(last-ds[0]) / daysPerWeek,
		}
		if s.X > 0 {
			var sum float64
			for _, d := range ds[1:] {
				sum += byDay[d]
			}
			s.AvgValue = sum / float64(s.X)
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Customer < out[j].Customer })
	return out
}
