package snapshot

import (
	"crypto/sha256"
	"encoding/hex"

	"google.golang.org/protobuf/proto"
)

// digest is the SHA-256 of a resource's deterministic wire bytes.
type digest [sha256.Size]byte

// versionHexLen is how many hex digits of a type's hash form its version.
const versionHexLen = 16

var deterministic = proto.MarshalOptions{Deterministic: true}

// String is the digest as a resource's version in xDS caches: all of it,
// as go-control-plane names a Delta resource's version, so that the
// versions a reconnecting client names match.
func (d digest) String() string { return hex.EncodeToString(d[:]) }

func digestOf(m proto.Message) (digest, error) {
	b, err := deterministic.Marshal(m)
	if err != nil {
		return digest{}, err
	}
	return sha256.Sum256(b), nil
}

// versionHash builds one type's version from its resources, added in name
// order, and the versions of types it depends on: the SHA-256 of name, 0,
// digest for each resource, then version, 0 for each dependency.
type versionHash struct{ buf []byte }

// newVersionHash hashes into buf's storage (nil is fine), which the caller
// may reuse after version.
func newVersionHash(buf []byte) *versionHash { return &versionHash{buf: buf[:0]} }

func (v *versionHash) add(name string, sum digest) {
	v.buf = append(v.buf, name...)
	v.buf = append(v.buf, 0)
	v.buf = append(v.buf, sum[:]...)
}

func (v *versionHash) dependOn(version string) {
	v.buf = append(v.buf, version...)
	v.buf = append(v.buf, 0)
}

func (v *versionHash) version() string {
	sum := sha256.Sum256(v.buf)
	return hex.EncodeToString(sum[:versionHexLen/2])
}
