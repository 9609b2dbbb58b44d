// lth-minio-admin: the one MinIO admin operation the project needs, which the `minio` npm client cannot do (the
// admin API encrypts its request bodies with the caller's secret): make sure a least-privilege user exists whose
// only policy allows s3:* on the project's bucket(s) and nothing else.
//
//	LTH_MINIO_ROOT_USER=... LTH_MINIO_ROOT_PASSWORD=... LTH_MINIO_USER_SECRET=... \
//	  lth-minio-admin ensure-user --endpoint http://127.0.0.1:9000 --bucket lth --user lthworker
//
// Secrets come from the environment only, never from argv (visible to every user in ps). Idempotent: the canned
// policy lth-user-<user> is created or replaced (one per user: users with other bucket sets never share it), the user is added or its secret reset, the policy
// attached and any other policy detached. Exit 0 on success; 1 with one line on stderr otherwise (2: usage).
// Built by infra/provision.sh (step minio) into .tools/bin; run by infra/embedded-stack.ts and cluster-stack.ts.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

type bucketList []string

func (b *bucketList) String() string     { return strings.Join(*b, ",") }
func (b *bucketList) Set(v string) error { *b = append(*b, v); return nil }

func usage(msg string) {
	fmt.Fprintf(os.Stderr, "lth-minio-admin: %s\nusage: lth-minio-admin ensure-user --endpoint URL --bucket NAME [--bucket PATTERN...] --user NAME [--ca-file PEM]\n"+
		"  env: LTH_MINIO_ROOT_USER, LTH_MINIO_ROOT_PASSWORD (admin), LTH_MINIO_USER_SECRET (the user's secret)\n", msg)
	os.Exit(2)
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "lth-minio-admin: "+format+"\n", a...)
	os.Exit(1)
}

func env(name string) string {
	v := os.Getenv(name)
	if v == "" {
		usage(name + " is not set")
	}
	return v
}

// bucketPolicy allows every S3 action on the named buckets (a name may end in * to match a prefix) and their objects.
func bucketPolicy(buckets []string) []byte {
	var res []string
	for _, b := range buckets {
		res = append(res, "arn:aws:s3:::"+b, "arn:aws:s3:::"+b+"/*")
	}
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{
			{"Effect": "Allow", "Action": []string{"s3:*"}, "Resource": res},
		},
	}
	out, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return out
}

// transportTrusting trusts exactly the certificate authorities in caFile (not the system's as well: a local
// stack's CA is the only one its MinIO's certificate can chain to).
func transportTrusting(caFile string) http.RoundTripper {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		fail("--ca-file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail("--ca-file: no PEM certificate in %s", caFile)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t
}

func main() {
	if len(os.Args) < 2 || os.Args[1] != "ensure-user" {
		usage("expected the command ensure-user")
	}
	fs := flag.NewFlagSet("ensure-user", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "", "MinIO S3 endpoint, http(s)://host:port")
	user := fs.String("user", "", "access key of the user to create or update")
	caFile := fs.String("ca-file", "", "PEM certificate authority to trust for an https endpoint (e.g. `lth up --tls`'s)")
	var buckets bucketList
	fs.Var(&buckets, "bucket", "bucket the user may use (repeatable; a trailing * matches a prefix)")
	if err := fs.Parse(os.Args[2:]); err != nil {
		usage(err.Error())
	}
	if fs.NArg() > 0 {
		usage("unexpected argument " + fs.Arg(0))
	}
	if *endpoint == "" || *user == "" || len(buckets) == 0 {
		usage("--endpoint, --user and --bucket are required")
	}
	u, err := url.Parse(*endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		usage("--endpoint must be an http(s):// URL, not " + *endpoint)
	}
	rootUser, rootPassword, secret := env("LTH_MINIO_ROOT_USER"), env("LTH_MINIO_ROOT_PASSWORD"), env("LTH_MINIO_USER_SECRET")

	opts := &madmin.Options{
		Creds:  credentials.NewStaticV4(rootUser, rootPassword, ""),
		Secure: u.Scheme == "https",
	}
	if *caFile != "" {
		opts.Transport = transportTrusting(*caFile)
	}
	adm, err := madmin.NewWithOptions(u.Host, opts)
	if err != nil {
		fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Named after the user, not the bucket: a policy shared by two users with different bucket lists would be
	// rewritten by whichever was set up last.
	policy := "lth-user-" + *user
	if err := adm.AddCannedPolicy(ctx, policy, bucketPolicy(buckets)); err != nil {
		fail("creating policy %s: %v", policy, err)
	}
	if err := adm.AddUser(ctx, *user, secret); err != nil {
		fail("adding user %s: %v", *user, err)
	}
	info, err := adm.GetUserInfo(ctx, *user)
	if err != nil {
		fail("reading user %s: %v", *user, err)
	}
	var others []string
	attached := false
	for _, p := range strings.Split(info.PolicyName, ",") {
		switch p = strings.TrimSpace(p); p {
		case "":
		case policy:
			attached = true
		default:
			others = append(others, p)
		}
	}
	if !attached {
		if _, err := adm.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{policy}, User: *user}); err != nil && !alreadyApplied(err) {
			fail("attaching policy %s to %s: %v", policy, *user, err)
		}
	}
	if len(others) > 0 {
		if _, err := adm.DetachPolicy(ctx, madmin.PolicyAssociationReq{Policies: others, User: *user}); err != nil && !alreadyApplied(err) {
			fail("detaching policies %s from %s: %v", strings.Join(others, ","), *user, err)
		}
	}
	fmt.Printf("user %s: policy %s (s3:* on %s)\n", *user, policy, strings.Join(buckets, ", "))
}

func alreadyApplied(err error) bool {
	var e madmin.ErrorResponse
	return errors.As(err, &e) && e.Code == "XMinioAdminPolicyChangeAlreadyApplied"
}
