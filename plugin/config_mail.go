package plugin

// MailConfig holds the settings of sending, templates, consent and Mailgun events.
type MailConfig struct{}

func (c MailConfig) validate() []error { return nil }
