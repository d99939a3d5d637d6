package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// ErrDecrypt is returned when a stored secret cannot be decrypted with any configured key.
var ErrDecrypt = errors.New("store: cannot decrypt secret with any configured key")

// crypter seals secrets with AES-256-GCM. The first key encrypts; every key is tried for
// decryption so that keys can be rotated by prepending a new one.
type crypter struct {
	aeads []cipher.AEAD
}

func newCrypter(keys [][]byte) (*crypter, error) {
	if len(keys) == 0 {
		return nil, errors.New("store: no encryption key")
	}
	c := &crypter{}
	for i, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("store: key %d: need 32 bytes, got %d", i, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		c.aeads = append(c.aeads, aead)
	}
	return c, nil
}

// seal encrypts plain, binding it to context (for example "tenant-token:access:alice") so a
// ciphertext copied to another row does not decrypt.
func (c *crypter) seal(plain, context string) string {
	aead := c.aeads[0]
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	out := aead.Seal(nonce, nonce, []byte(plain), []byte(context))
	return "v1:" + base64.RawStdEncoding.EncodeToString(out)
}

func (c *crypter) open(sealed, context string) (string, error) {
	if len(sealed) < 3 || sealed[:3] != "v1:" {
		return "", ErrDecrypt
	}
	raw, err := base64.RawStdEncoding.DecodeString(sealed[3:])
	if err != nil {
		return "", ErrDecrypt
	}
	for _, aead := range c.aeads {
		n := aead.NonceSize()
		if len(raw) < n {
			return "", ErrDecrypt
		}
		if plain, err := aead.Open(nil, raw[:n], raw[n:], []byte(context)); err == nil {
			return string(plain), nil
		}
	}
	return "", ErrDecrypt
}

// ErrWrongKey is returned by Open when the database holds encrypted secrets and none of them
// decrypts with the configured keys: the keys are not the ones the data was encrypted with.
var ErrWrongKey = errors.New("the configured crypt key is not the one the hub's stored tenant tokens were encrypted with; " +
	"add that old key to crypt_keys (after the new one, or to OHTKHUB_CRYPT_KEY separated by \";\") and start again")

// checkKeys samples the stored tenant tokens and fails with ErrWrongKey when there are some
// and none decrypts, so a wrong key stops the hub at start instead of failing every spawn.
func (s *Store) checkKeys(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT user_name, access_token FROM hub_tenant_tokens ORDER BY updated_at DESC LIMIT 50`)
	if err != nil {
		return err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var user, sealed string
		if err := rows.Scan(&user, &sealed); err != nil {
			return err
		}
		if _, err := s.crypt.open(sealed, "tenant-token:access:"+user); err == nil {
			return nil
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n > 0 {
		return ErrWrongKey
	}
	return nil
}
