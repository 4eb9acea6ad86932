package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// ensureAttempts is how many times EnsureListed writes the referrers tag index before it gives up.
const ensureAttempts = 5

// EnsureListed reads back the referrers of subject and makes sure referrer (a manifest just pushed
// with subject) is among them, as every reader will list them. Registries are not all what they
// say: one may answer a manifest PUT with an OCI-Subject header without having the referrers API
// (so oras-go writes no tag index), and other writers may replace the referrers tag index at the
// same moment (distribution offers an ETag but ignores If-Match). So:
//   - when the referrer is missing, it is added to the referrers tag schema index ("<alg>-<hex>"),
//     merged with what the index lists then, so that nothing another writer added is dropped, with
//     If-Match on the index's ETag where the registry honours it (412: read again);
//   - a listing from the tag schema is read again after a pause of about two round trips, and
//     must show the referrer twice in a row: a writer that read the index before this one wrote
//     it and wrote after would otherwise drop it unseen;
//   - up to five writes, with random pauses between.
//
// A listing from the referrers API needs no second look (the registry lists by subject), and an
// OCI layout records its referrers itself. The error says when the referrer cannot be made
// visible: nothing must report "attached" what no reader can find.
func (t *Target) EnsureListed(ctx context.Context, subject, referrer ocispec.Descriptor) error {
	repo, ok := t.Store().(*remote.Repository)
	if !ok {
		return nil
	}
	key := t.host + "/" + repo.Reference.Repository
	settle := 100 * time.Millisecond
	seen, writes := 0, 0
	for {
		refs, err := t.Referrers(ctx, subject, "")
		if err != nil {
			return fmt.Errorf("reading back the referrers of %s@%s: %w", t.name, subject.Digest, err)
		}
		present := false
		for _, r := range refs {
			present = present || r.Digest == referrer.Digest
		}
		if present {
			if api, _ := t.session.api(key); api {
				return nil
			}
			if seen++; seen == 2 {
				return nil
			}
		} else {
			seen = 0
			if writes == ensureAttempts {
				return fmt.Errorf("%s@%s is pushed but %s@%s does not list it after %d writes of its referrers tag index: another writer keeps replacing it, or the registry does not keep it: attach again", t.name, referrer.Digest, t.name, subject.Digest, ensureAttempts)
			}
			writes++
			start := time.Now()
			if err := t.addToTagIndex(ctx, repo, subject, referrer); err != nil {
				return err
			}
			settle = max(settle, 2*time.Since(start))
			// Read the listing as a new reader does: through the tag schema now.
			t.session.setAPI(key, false)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(settle + time.Duration(rand.Int64N(int64(settle)))):
		}
	}
}

// addToTagIndex writes the referrers tag schema index of subject with referrer added to what it
// lists now, conditionally on its ETag where the registry gives one (412: read again, at most
// ensureAttempts times).
func (t *Target) addToTagIndex(ctx context.Context, repo *remote.Repository, subject, referrer ocispec.Descriptor) error {
	tag := subject.Digest.Algorithm().String() + "-" + subject.Digest.Encoded()
	scheme := "https"
	if repo.PlainHTTP {
		scheme = "http"
	}
	u := fmt.Sprintf("%s://%s/v2/%s/manifests/%s", scheme, repo.Reference.Host(), repo.Reference.Repository, tag)
	ref := repo.Reference
	ref.Reference = tag
	ctx = auth.AppendRepositoryScope(ctx, ref, auth.ActionPull, auth.ActionPush)
	what := "the referrers tag index " + t.name + ":" + tag
	for attempt := 0; ; attempt++ {
		listed, etag, err := t.getTagIndex(ctx, repo.Client, u, what)
		if err != nil {
			return err
		}
		for _, r := range listed {
			if r.Digest == referrer.Digest {
				return nil
			}
		}
		idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: append(listed, referrer)}
		data, err := json.Marshal(idx)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(data))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", ocispec.MediaTypeImageIndex)
		if etag != "" {
			req.Header.Set("If-Match", etag)
		}
		resp, err := repo.Client.Do(req)
		if err != nil {
			return t.wrap(err, "writing "+what, "")
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK:
			return nil
		case resp.StatusCode == http.StatusPreconditionFailed && attempt < ensureAttempts:
			continue // another writer came first: merge with what it wrote
		}
		return t.wrap(&errcode.ErrorResponse{Method: req.Method, URL: req.URL, StatusCode: resp.StatusCode, Errors: decodeErrors(body)}, "writing "+what, "")
	}
}

// getTagIndex reads a referrers tag index and its ETag; no tag is an empty list.
func (t *Target) getTagIndex(ctx context.Context, client remote.Client, u, what string) ([]ocispec.Descriptor, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageIndex)
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", t.wrap(err, "reading "+what, "")
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, "", nil
	default:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, "", t.wrap(&errcode.ErrorResponse{Method: req.Method, URL: req.URL, StatusCode: resp.StatusCode, Errors: decodeErrors(body)}, "reading "+what, "")
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestBytes+1))
	if err != nil {
		return nil, "", t.wrap(err, "reading "+what, "")
	}
	if len(body) > MaxManifestBytes {
		return nil, "", fmt.Errorf("%w: %s is more than %d bytes", ErrTooLarge, what, MaxManifestBytes)
	}
	idx, ok := decodeReferrersIndex(body)
	if !ok {
		return nil, "", fmt.Errorf("%w: %s is not an image index: it cannot be updated", ErrInvalidArtifact, what)
	}
	return idx.Manifests, resp.Header.Get("ETag"), nil
}
