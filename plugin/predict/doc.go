// Package predict fits the customer-base models of the marketing
// literature to repeat-purchase summaries and predicts, per customer, the
// probability of still being active, the expected number of orders in the
// next 30, 90 and 365 days, when the next order is expected and the value
// expected over the next 12 months.
//
// Two models are fitted by maximum likelihood:
//
//   - BG/NBD (Fader, Hardie and Lee, "Counting Your Customers the Easy
//     Way", Marketing Science 2005) for the number of repeat transactions:
//     while active a customer buys at a Poisson rate (gamma distributed
//     across customers, parameters r and alpha) and after each purchase
//     drops out with a probability (beta distributed, parameters a and b).
//   - Gamma-Gamma (Fader and Hardie, "The Gamma-Gamma Model of Monetary
//     Value", 2013) for the average value of the repeat transactions
//     (parameters p, q and gamma), fitted on the customers with at least
//     one repeat transaction.
//
// A customer enters as a Summary: the number of repeat transactions x (the
// first purchase is not counted), the time of the last one since the first
// purchase t_x, the age T since the first purchase, all in weeks, and the
// average value of the repeat transactions. Summarize builds them from
// transactions; purchases by one customer on one calendar day count as one
// transaction whose value is their sum.
//
// Everything is computed in log space: the likelihoods use log-gamma
// functions and a log-sum-exp of their two terms, and the Gaussian
// hypergeometric function of the conditional expectation is summed as a
// rescaled series, so large frequencies and long horizons neither
// overflow nor underflow.
//
// Too little history. A fit needs at least FitOpts.MinCustomers customers
// (default 100) of whom FitOpts.MinRepeaters (default 30) have a repeat
// transaction with a positive average value; with fewer, Fit returns
// ErrTooLittleHistory instead of parameters that would be a guess. A
// customer gets a prediction only when the summary is consistent
// (0 <= t_x <= T, t_x = 0 when x = 0) and the customer is at least
// FitOpts.MinAge old (default 4 weeks): Predict returns
// ErrTooLittleHistory for a younger customer, whose summary says almost
// nothing beyond the population average.
//
// Non-convergence. When the optimiser stops before a maximum is found
// (iteration limit, failed line search, non-finite likelihood), Fit
// returns an error wrapping ErrNotConverged, so that the caller keeps the
// model it had.
//
// The package is pure computation: no storage, no clock, no globals.
package predict
