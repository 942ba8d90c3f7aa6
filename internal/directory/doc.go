// Package directory is CAFE's side of the bank's user directory (LDAP or
// Active Directory): the model of a directory's users and groups, the
// configuration and seed of an OpenLDAP server (Debian's slapd) that the
// local control plane and the tests run on loopback, and a client that
// authenticates a user with their password over TLS and reads their
// groups. Nothing here stores a password: the directory holds salted
// hashes, and the client passes a password once, to the bind that checks
// it.
package directory
