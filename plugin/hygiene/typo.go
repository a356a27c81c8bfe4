package hygiene

import "strings"

// CommonDomains is the table of common mailbox domains that typos are
// measured against, the most used first (a tie goes to the earlier one).
// The README lists the same.
var CommonDomains = []string{
	"gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "live.com",
	"aol.com", "msn.com", "protonmail.com", "proton.me", "gmx.com", "mail.com", "yandex.com", "zoho.com",
	// France
	"orange.fr", "wanadoo.fr", "free.fr", "sfr.fr", "neuf.fr", "laposte.net", "hotmail.fr", "yahoo.fr",
	"live.fr", "outlook.fr", "bbox.fr", "aliceadsl.fr", "club-internet.fr", "numericable.fr",
	// United Kingdom and Ireland
	"hotmail.co.uk", "yahoo.co.uk", "live.co.uk", "outlook.co.uk", "btinternet.com", "sky.com", "virginmedia.com", "outlook.ie",
	// Germany, Austria, Switzerland
	"gmx.de", "gmx.net", "web.de", "t-online.de", "freenet.de", "bluewin.ch", "gmx.at", "gmx.ch",
	// Belgium, Netherlands
	"hotmail.de", "yahoo.de", "outlook.de", "live.de",
	"skynet.be", "telenet.be", "hotmail.be", "ziggo.nl", "kpnmail.nl",
	// Spain, Italy, Portugal
	"hotmail.es", "yahoo.es", "outlook.es", "yahoo.it", "live.it", "hotmail.nl", "live.nl", "live.be", "telefonica.net", "hotmail.it", "libero.it", "virgilio.it", "tiscali.it", "sapo.pt",
	// North America, elsewhere
	"comcast.net", "verizon.net", "att.net", "sbcglobal.net", "hotmail.ca", "yahoo.ca", "mail.ru", "yandex.ru",
	"qq.com", "163.com", "naver.com",
}

// suggest returns the common domain that domain is likely a typo of, or ""
// when domain is common itself or far from all of them. One edit (a letter
// missing, added, changed, or two swapped) is a typo for domains of 7
// characters or more; two edits for 11 or more when the first letter and
// what follows the first dot are right. Shorter names are too close
// to real, unrelated domains to guess.
func (c *Checker) suggest(domain string) string {
	if _, ok := c.commonSet[domain]; ok {
		return ""
	}
	best, bestDist := "", 3
	for _, d := range c.common {
		limit := 0
		switch {
		case len(d) >= 11:
			limit = 2
		case len(d) >= 7:
			limit = 1
		}
		if limit == 0 || abs(len(d)-len(domain)) > limit {
			continue
		}
		if limit == 2 && (domain[0] != d[0] || suffix(domain) != suffix(d)) {
			// Two edits only within the name: yopmail.com is not hotmail.com.
			limit = 1
		}
		if dist := OSADistance(domain, d); dist <= limit && dist < bestDist {
			best, bestDist = d, dist
		}
	}
	return best
}

// suffix is what follows the first dot of a domain.
func suffix(domain string) string {
	if i := strings.IndexByte(domain, '.'); i >= 0 {
		return domain[i:]
	}
	return ""
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// OSADistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of two neighbours each
// cost one. Domains here are ASCII (IDNA), so bytes are letters.
func OSADistance(a, b string) int {
	a, b = strings.ToLower(a), strings.ToLower(b)
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
