package experiments

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"abgate"
)

// API key roles, each including the ones before it.
const (
	RoleViewer = "viewer" // reads
	RoleEditor = "editor" // changes experiments, events and models
	RoleAdmin  = "admin"  // manages API keys
)

var roleRank = map[string]int{RoleViewer: 1, RoleEditor: 2, RoleAdmin: 3}

// RoleAllows reports whether role has at least the rights of need.
func RoleAllows(role, need string) bool {
	return roleRank[role] >= roleRank[need] && roleRank[need] > 0
}

// BootstrapKeyName is the name of the admin key made at first start.
const BootstrapKeyName = "admin"

type apiKeyRow struct {
	ID         int64 `gorm:"primaryKey"`
	Name       string
	Role       string
	TokenHash  string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

func (apiKeyRow) TableName() string { return "api_keys" }

// APIKey is a named bearer token with a role. The token itself is shown
// once, when the key is made; only its SHA-256 hash is stored.
type APIKey struct {
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// KeyRequest is the body of POST /api/v1/keys.
type KeyRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// NewToken returns a fresh random bearer token.
func NewToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return "abg_" + base64.RawURLEncoding.EncodeToString(b)
}

// HashToken returns the hex SHA-256 of token, the form stored.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateKey makes a key and returns it with its token, which is not kept.
// A name in use (revoked keys keep theirs) is ECONFLICT.
func (s *Store) CreateKey(ctx context.Context, r KeyRequest) (*APIKey, string, error) {
	if !ValidKey(r.Name) {
		return nil, "", abgate.FieldErrorf("name", "key name %q must match [a-z0-9][a-z0-9-_]{0,63}", r.Name)
	}
	if roleRank[r.Role] == 0 {
		return nil, "", abgate.FieldErrorf("role", "role %q is not one of viewer, editor, admin", r.Role)
	}
	token := NewToken()
	key, err := s.insertKey(ctx, r.Name, r.Role, token)
	if err != nil {
		return nil, "", err
	}
	return key, token, nil
}

func (s *Store) insertKey(ctx context.Context, name, role, token string) (*APIKey, error) {
	now := s.now()
	row := apiKeyRow{Name: name, Role: role, TokenHash: HashToken(token), CreatedAt: now}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		if res.Error != nil {
			return res.Error
		} else if res.RowsAffected == 0 {
			return &abgate.Error{Code: abgate.ECONFLICT, Field: "name", Message: fmt.Sprintf("API key %q already exists", name)}
		}
		return s.changed(tx, "key.create", "api_key", name, nil, toKey(row))
	})
	if err != nil {
		return nil, err
	}
	return toKey(row), nil
}

func toKey(r apiKeyRow) *APIKey {
	return &APIKey{Name: r.Name, Role: r.Role, CreatedAt: r.CreatedAt.UTC(), LastUsedAt: utc(r.LastUsedAt), RevokedAt: utc(r.RevokedAt)}
}

// Keys lists every key by name, revoked ones included.
func (s *Store) Keys(ctx context.Context) ([]*APIKey, error) {
	var rows []apiKeyRow
	if err := s.db.WithContext(ctx).Order("name").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]*APIKey, len(rows))
	for i, r := range rows {
		out[i] = toKey(r)
	}
	return out, nil
}

// RevokeKey revokes the key called name; its token stops working at once.
// An unknown name is ENOTFOUND; revoking the last admin key is ECONFLICT.
func (s *Store) RevokeKey(ctx context.Context, name string) (*APIKey, error) {
	var out *APIKey
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row apiKeyRow
		if err := tx.Where("name = ?", name).Take(&row).Error; errors.Is(err, gorm.ErrRecordNotFound) {
			return abgate.Errorf(abgate.ENOTFOUND, "API key %q not found", name)
		} else if err != nil {
			return err
		}
		if row.RevokedAt != nil {
			out = toKey(row)
			return nil
		}
		if row.Role == RoleAdmin {
			var admins int64
			if err := tx.Model(&apiKeyRow{}).Where("role = ? AND revoked_at IS NULL", RoleAdmin).Count(&admins).Error; err != nil {
				return err
			}
			if admins <= 1 {
				return abgate.Errorf(abgate.ECONFLICT, "API key %q is the last admin key; create another admin key first", name)
			}
		}
		before := toKey(row)
		now := s.now()
		row.RevokedAt = &now
		if err := tx.Model(&apiKeyRow{}).Where("id = ?", row.ID).Update("revoked_at", now).Error; err != nil {
			return err
		}
		out = toKey(row)
		return s.changed(tx, "key.revoke", "api_key", name, before, out)
	})
	return out, err
}

// Authenticate returns the actor a bearer token belongs to. A missing,
// unknown or revoked token is EUNAUTHORIZED.
func (s *Store) Authenticate(ctx context.Context, token string) (abgate.Actor, error) {
	if token == "" {
		return abgate.Actor{}, abgate.Errorf(abgate.EUNAUTHORIZED, "missing bearer token: send Authorization: Bearer <token>")
	}
	var row apiKeyRow
	err := s.db.WithContext(ctx).Where("token_hash = ? AND revoked_at IS NULL", HashToken(token)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return abgate.Actor{}, abgate.Errorf(abgate.EUNAUTHORIZED, "unknown or revoked API token")
	} else if err != nil {
		return abgate.Actor{}, err
	}
	now := s.now()
	if row.LastUsedAt == nil || now.Sub(*row.LastUsedAt) > time.Minute {
		// At most one write per key and minute.
		if err := s.db.WithContext(ctx).Model(&apiKeyRow{}).Where("id = ?", row.ID).Update("last_used_at", now).Error; err != nil {
			s.log.Warn("api key last use not recorded", "key", row.Name, "err", err)
		}
	}
	return abgate.Actor{Name: row.Name, Role: row.Role}, nil
}

// EnsureAdmin makes sure an admin can log in. With a token (from
// --admin-token), the key called "admin" gets that token (created, or
// re-keyed and un-revoked if it differs). Without one, when no admin key
// exists, it makes the "admin" key with a fresh token and returns the token
// so that it can be printed once; otherwise it returns "".
func (s *Store) EnsureAdmin(ctx context.Context, token string) (string, error) {
	ctx = abgate.NewContextWithActor(ctx, abgate.Actor{Name: "system", Role: RoleAdmin})
	if token == "" {
		var admins int64
		if err := s.db.WithContext(ctx).Model(&apiKeyRow{}).Where("role = ? AND revoked_at IS NULL", RoleAdmin).Count(&admins).Error; err != nil {
			return "", err
		}
		if admins > 0 {
			return "", nil
		}
		token = NewToken()
		name := BootstrapKeyName
		var taken int64
		if err := s.db.WithContext(ctx).Model(&apiKeyRow{}).Where("name = ?", name).Count(&taken).Error; err != nil {
			return "", err
		} else if taken > 0 {
			name = fmt.Sprintf("%s-%d", BootstrapKeyName, s.now().Unix())
		}
		if _, err := s.insertKey(ctx, name, RoleAdmin, token); err != nil {
			return "", err
		}
		return token, nil
	}
	hash := HashToken(token)
	return "", s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var other apiKeyRow
		if err := tx.Where("token_hash = ? AND name <> ?", hash, BootstrapKeyName).Take(&other).Error; err == nil {
			return abgate.Errorf(abgate.ECONFLICT, "the admin token is already the token of API key %q; choose another", other.Name)
		} else if !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		var row apiKeyRow
		err := tx.Where("name = ?", BootstrapKeyName).Take(&row).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			row = apiKeyRow{Name: BootstrapKeyName, Role: RoleAdmin, TokenHash: hash, CreatedAt: s.now()}
			res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
			if res.Error != nil {
				return res.Error
			} else if res.RowsAffected == 1 {
				return s.changed(tx, "key.create", "api_key", row.Name, nil, toKey(row))
			}
			// Another process made it since the read above: compare with it.
			if err := tx.Where("name = ?", BootstrapKeyName).Take(&row).Error; err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		if row.TokenHash == hash && row.Role == RoleAdmin && row.RevokedAt == nil {
			return nil
		}
		before := toKey(row)
		if err := tx.Model(&apiKeyRow{}).Where("id = ?", row.ID).
			Updates(map[string]any{"token_hash": hash, "role": RoleAdmin, "revoked_at": nil}).Error; err != nil {
			return err
		}
		row.Role, row.RevokedAt = RoleAdmin, nil
		return s.changed(tx, "key.rotate", "api_key", row.Name, before, toKey(row))
	})
}
