package kpi

// Rate is a ratio that names its numerator and denominator.
type Rate struct {
	// Name is the rate ("open_rate"); Numerator and Denominator name the
	// counters it divides ("unique_opens", "delivered").
	Name, Numerator, Denominator string
	Num, Den                     int64
}

// Value is Num / Den, and false when Den is zero.
func (r Rate) Value() (float64, bool) {
	if r.Den == 0 {
		return 0, false
	}
	return float64(r.Num) / float64(r.Den), true
}

// Rates are the rates of c. Engagement rates are over delivered messages;
// delivery and bounce rates over sent ones; click-to-open over unique opens.
func (c Counters) Rates() []Rate {
	r := func(name, num, den string, n, d int64) Rate {
		return Rate{Name: name, Numerator: num, Denominator: den, Num: n, Den: d}
	}
	return []Rate{
		r("delivery_rate", "delivered", "sent", c.Delivered, c.Sent),
		r("hard_bounce_rate", "hard_bounces", "sent", c.HardBounces, c.Sent),
		r("soft_bounce_rate", "soft_bounces", "sent", c.SoftBounces, c.Sent),
		r("open_rate", "unique_opens", "delivered", c.UniqueOpens, c.Delivered),
		r("machine_open_rate", "machine_opens", "delivered", c.MachineOpens, c.Delivered),
		r("click_rate", "unique_clicks", "delivered", c.UniqueClicks, c.Delivered),
		r("click_to_open_rate", "unique_clicks", "unique_opens", c.UniqueClicks, c.UniqueOpens),
		r("unsubscribe_rate", "unsubscribes", "delivered", c.Unsubscribes, c.Delivered),
		r("complaint_rate", "complaints", "delivered", c.Complaints, c.Delivered),
		r("conversion_rate", "conversions", "delivered", c.Conversions, c.Delivered),
		r("goal_conversion_rate", "goal_conversions", "delivered", c.GoalConversions, c.Delivered),
	}
}
