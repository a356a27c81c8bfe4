package auth_test

import (
	"crypto/sha256"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/refrain-dev/refrain/plugin/auth"
)

func TestGenerateAPIKey(t *testing.T) {
	shape := regexp.MustCompile(`^rfn_([a-km-np-z2-9]{8})_[A-Za-z0-9_-]{43}$`)
	seen := map[string]bool{}
	for range 200 {
		plaintext, prefix, hash, err := auth.GenerateAPIKey()
		require.NoError(t, err)
		m := shape.FindStringSubmatch(plaintext)
		require.NotNil(t, m, plaintext)
		require.Equal(t, m[1], prefix)

		sum := sha256.Sum256([]byte(plaintext))
		require.Equal(t, sum[:], hash)
		require.True(t, auth.VerifyAPIKeyHash(plaintext, hash))

		parsed, ok := auth.ParseAPIKey(plaintext)
		require.True(t, ok)
		require.Equal(t, prefix, parsed)

		require.False(t, seen[plaintext], "keys repeat")
		seen[plaintext] = true
	}
}

func TestVerifyAPIKeyHashRejectsOtherKeys(t *testing.T) {
	plaintext, _, hash, err := auth.GenerateAPIKey()
	require.NoError(t, err)
	other, _, _, err := auth.GenerateAPIKey()
	require.NoError(t, err)

	require.False(t, auth.VerifyAPIKeyHash(other, hash))
	require.False(t, auth.VerifyAPIKeyHash(plaintext+"x", hash))
	require.False(t, auth.VerifyAPIKeyHash(plaintext, hash[:31]))
	require.False(t, auth.VerifyAPIKeyHash(plaintext, nil))
}

func TestParseAPIKeyRejectsMalformedKeys(t *testing.T) {
	good, _, _, err := auth.GenerateAPIKey()
	require.NoError(t, err)
	secret := good[13:]
	for name, token := range map[string]string{
		"empty":             "",
		"no marker":         "abc" + good[3:],
		"other marker":      "rfx_" + good[4:],
		"truncated":         good[:len(good)-1],
		"extended":          good + "A",
		"separator missing": good[:12] + "-" + good[13:],
		"prefix uppercase":  "rfn_ABCDEFGH_" + secret,
		"prefix look-alike": "rfn_0000l1oo_" + secret,
		"secret not base64": good[:13] + strings.Repeat("*", 43),
		"jwt":               "eyJhbGciOiJIUzI1NiJ9.e30.sig",
	} {
		t.Run(name, func(t *testing.T) {
			prefix, ok := auth.ParseAPIKey(token)
			require.False(t, ok)
			require.Empty(t, prefix)
		})
	}
}
