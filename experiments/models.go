package experiments

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"abgate"
)

// Model sources.
const (
	SourceLocal  = "local"  // in the model repository of this process
	SourceRemote = "remote" // served by backends registered by URL
)

// MaxBackends is the most backends one model may register.
const MaxBackends = 64

type modelRow struct {
	ID        int64 `gorm:"primaryKey"`
	Name      string
	Version   string
	Source    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (modelRow) TableName() string { return "models" }

type backendRow struct {
	ID        int64 `gorm:"primaryKey"`
	ModelID   int64
	URL       string
	CreatedAt time.Time
}

func (backendRow) TableName() string { return "model_backends" }

// Model is a model variants can name: one from the local repository, or
// one served elsewhere by backends registered by URL.
type Model struct {
	Name string `json:"name"`
	// Version pins a version; "" serves the latest.
	Version   string    `json:"version,omitempty"`
	Source    string    `json:"source"`
	Backends  []string  `json:"backends"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ModelRegistration is the body of POST /api/v1/models.
type ModelRegistration struct {
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	Backends []string `json:"backends"`
}

// Validate checks a registration; violations are EINVALID naming the field.
// It returns the backends normalised (no trailing slash, no duplicates).
func (r ModelRegistration) Validate() ([]string, error) {
	if !ValidModelName(r.Name) {
		return nil, abgate.FieldErrorf("name", "model name %q must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}", r.Name)
	}
	if len(r.Version) > 64 || strings.ContainsAny(r.Version, "/?# ") {
		return nil, abgate.FieldErrorf("version", "version must be at most 64 characters without / ? # or spaces")
	}
	if len(r.Backends) == 0 || len(r.Backends) > MaxBackends {
		return nil, abgate.FieldErrorf("backends", "a model served elsewhere needs 1 to %d backend URLs, got %d", MaxBackends, len(r.Backends))
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(r.Backends))
	for i, b := range r.Backends {
		field := fmt.Sprintf("backends[%d]", i)
		u, err := url.Parse(b)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, abgate.FieldErrorf(field, "backend %q must be an http:// or https:// URL with a host", b)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, abgate.FieldErrorf(field, "backend %q must not carry credentials, a query or a fragment", b)
		}
		norm := strings.TrimRight(u.String(), "/")
		if seen[norm] {
			return nil, abgate.FieldErrorf(field, "backend %q is listed twice", b)
		}
		seen[norm] = true
		out = append(out, norm)
	}
	return out, nil
}

// RegisterModel stores a model served by remote backends. A name in use is
// ECONFLICT.
func (s *Store) RegisterModel(ctx context.Context, r ModelRegistration) (*Model, error) {
	backends, err := r.Validate()
	if err != nil {
		return nil, err
	}
	now := s.now()
	m := &Model{Name: r.Name, Version: r.Version, Source: SourceRemote, Backends: backends, CreatedAt: now, UpdatedAt: now}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		row := modelRow{Name: m.Name, Version: m.Version, Source: m.Source, CreatedAt: now, UpdatedAt: now}
		res := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}}, DoNothing: true}).Create(&row)
		if res.Error != nil {
			return res.Error
		} else if res.RowsAffected == 0 {
			return &abgate.Error{Code: abgate.ECONFLICT, Field: "name", Message: fmt.Sprintf("model %q is already registered", m.Name)}
		}
		for _, b := range backends {
			if err := tx.Create(&backendRow{ModelID: row.ID, URL: b, CreatedAt: now}).Error; err != nil {
				return err
			}
		}
		return s.changed(tx, "model.register", "model", m.Name, nil, m)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// EnsureLocalModel records that the local model repository serves name, so
// that variants can name it. It is idempotent and does not touch a remote
// model of the same name (ECONFLICT).
func (s *Store) EnsureLocalModel(ctx context.Context, name string) error {
	if !ValidModelName(name) {
		return abgate.FieldErrorf("name", "model name %q must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}", name)
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row modelRow
		err := tx.Where("name = ?", name).Take(&row).Error
		switch {
		case err == nil && row.Source == SourceLocal:
			return nil
		case err == nil:
			return abgate.Errorf(abgate.ECONFLICT, "model %q is registered with remote backends", name)
		case !errors.Is(err, gorm.ErrRecordNotFound):
			return err
		}
		now := s.now()
		m := &Model{Name: name, Source: SourceLocal, Backends: []string{}, CreatedAt: now, UpdatedAt: now}
		res := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}}, DoNothing: true}).
			Create(&modelRow{Name: name, Source: SourceLocal, CreatedAt: now, UpdatedAt: now})
		if res.Error != nil {
			return res.Error
		} else if res.RowsAffected == 0 {
			// Another process registered it since the read above.
			if err := tx.Where("name = ?", name).Take(&row).Error; err != nil {
				return err
			} else if row.Source != SourceLocal {
				return abgate.Errorf(abgate.ECONFLICT, "model %q is registered with remote backends", name)
			}
			return nil
		}
		return s.changed(tx, "model.register", "model", name, nil, m)
	})
}

// Models lists every model by name.
func (s *Store) Models(ctx context.Context) ([]*Model, error) {
	return s.models(s.db.WithContext(ctx))
}

// Model returns the model called name, or ENOTFOUND.
func (s *Store) Model(ctx context.Context, name string) (*Model, error) {
	ms, err := s.models(s.db.WithContext(ctx).Where("name = ?", name))
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, abgate.Errorf(abgate.ENOTFOUND, "model %q not found", name)
	}
	return ms[0], nil
}

func (s *Store) models(q *gorm.DB) ([]*Model, error) {
	var rows []modelRow
	if err := q.Order("name").Find(&rows).Error; err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return []*Model{}, nil
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	var backends []backendRow
	if err := q.Session(&gorm.Session{NewDB: true}).Where("model_id IN ?", ids).Order("id").Find(&backends).Error; err != nil {
		return nil, err
	}
	byID := make(map[int64]*Model, len(rows))
	out := make([]*Model, len(rows))
	for i, r := range rows {
		m := &Model{Name: r.Name, Version: r.Version, Source: r.Source, Backends: []string{}, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
		byID[r.ID] = m
		out[i] = m
	}
	for _, b := range backends {
		byID[b.ModelID].Backends = append(byID[b.ModelID].Backends, b.URL)
	}
	return out, nil
}

// DeleteModel removes a registered model. A model that a variant of an
// experiment that is not archived names is ECONFLICT.
func (s *Store) DeleteModel(ctx context.Context, name string) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row modelRow
		if err := tx.Where("name = ?", name).Take(&row).Error; errors.Is(err, gorm.ErrRecordNotFound) {
			return abgate.Errorf(abgate.ENOTFOUND, "model %q not found", name)
		} else if err != nil {
			return err
		}
		var users []string
		if err := tx.Model(&variantRow{}).Joins("JOIN experiments ON experiments.id = variants.experiment_id").
			Where("variants.model = ? AND experiments.status <> ?", name, string(StatusArchived)).
			Distinct().Pluck("experiments.key", &users).Error; err != nil {
			return err
		}
		if len(users) > 0 {
			return abgate.Errorf(abgate.ECONFLICT, "model %q is used by experiment(s) %s; archive them first", name, strings.Join(users, ", "))
		}
		before, err := s.models(tx.Where("id = ?", row.ID))
		if err != nil {
			return err
		}
		if err := tx.Delete(&modelRow{}, row.ID).Error; err != nil {
			return err
		}
		return s.changed(tx, "model.delete", "model", name, before[0], nil)
	})
}
