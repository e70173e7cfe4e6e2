/*
 * test_s3.c - the S3 driver: SigV4 against the published AWS test vectors,
 * MD5, the XML parsers (malformed and hostile input included), driver
 * configuration, and - only when PGVAULT_TEST_S3_ENDPOINT is set (the
 * integration tests do) - the storage conformance suite and a few S3
 * specific checks against a live S3 API.
 *
 * Live tests: PGVAULT_TEST_S3_ENDPOINT (path style), PGVAULT_TEST_S3_BUCKET
 * (default "pgvault-test", must exist), credentials from AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY; each test gets a fresh random s3_prefix.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "common/parse.h"
#include "config/conf.h"
#include "storage/s3.h"
#include "storage/s3_sign.h"
#include "storage/s3_xml.h"
#include "storage/storage.h"
#include "storage_conformance.h"
#include "suites.h"
#include "testutil.h"

/* ------------------------------------------------------------ SigV4 test suite */

/*
 * The AWS Signature Version 4 test suite (docs.aws.amazon.com/general/latest/
 * gr/signature-v4-test-suite.html): service "service", region us-east-1,
 * 20150830T123600Z, AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY.
 * The path-normalization cases are left out: S3 signs the path as sent.
 * The two x-www-form-urlencoded cases contradict themselves: their .creq
 * files sign content-length, but the published string to sign and
 * signature were computed without it (and, for -parameters, with
 * "charset=utf8" where the request says "utf-8"; its SignedHeaders still
 * names content-length). Those are signed as the signature was made, the
 * .creq is not compared, and only the Signature value of -parameters.
 */
#define MAXKV 8

typedef struct sigv4_vector
{
	const char *name;
	const char *method;
	const char *path;
	const char *query[MAXKV][2];
	size_t		nquery;
	const char *headers[MAXKV][2];
	size_t		nheaders;
	const char *body;
	const char *creq;			/* NULL: not checked */
	const char *sts;			/* NULL: not checked */
	const char *authz;
	bool		form;			/* see above */
} sigv4_vector;

static const sigv4_vector sigv4_vectors[] = {
	{
		"get-header-key-duplicate", "GET", "/",
		{{NULL, NULL}}, 0,
		{{"Host", "example.amazonaws.com"}, {"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}, {"X-Amz-Date", "20150830T123600Z"}}, 5,
		"",
		"GET\n" 
		"/\n" 
		"\n" 
		"host:example.amazonaws.com\n" 
		"my-header1:value2,value2,value1\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;my-header1;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
		false
	},
	{
		"get-header-value-order", "GET", "/",
		{{NULL, NULL}}, 0,
		{{"Host", "example.amazonaws.com"}, {"My-Header1", "value4"}, {"My-Header1", "value1"}, {"My-Header1", "value3"}, {"My-Header1", "value2"}, {"X-Amz-Date", "20150830T123600Z"}}, 6,
		"",
		"GET\n" 
		"/\n" 
		"\n" 
		"host:example.amazonaws.com\n" 
		"my-header1:value4,value1,value3,value2\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;my-header1;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
		false
	},
	{
		"get-header-value-trim", "GET", "/",
		{{NULL, NULL}}, 0,
		{{"Host", "example.amazonaws.com"}, {"My-Header1", "value1"}, {"My-Header2", "\"a   b   c\""}, {"X-Amz-Date", "20150830T123600Z"}}, 4,
		"",
		"GET\n" 
		"/\n" 
		"\n" 
		"host:example.amazonaws.com\n" 
		"my-header1:value1\n" 
		"my-header2:\"a b c\"\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;my-header1;my-header2;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
		false
	},
	{
		"get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
		{{NULL, NULL}}, 0,
		{{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, 2,
		"",
		"GET\n" 
		"/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n" 
		"\n" 
		"host:example.amazonaws.com\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
		false
	},
	{
		"get-vanilla", "GET", "/",
		{{NULL, NULL}}, 0,
		{{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, 2,
		"",
		"GET\n" 
		"/\n" 
		"\n" 
		"host:example.amazonaws.com\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
		false
	},
	{
		"get-vanilla-empty-query-key", "GET", "/",
		{{"Param1", "value1"}}, 1,
		{{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, 2,
		"",
		"GET\n" 
		"/\n" 
		"Param1=value1\n" 
		"host:example.amazonaws.com\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
		false
	},
	{
		"get-vanilla-query", "GET", "/",
		{{NULL, NULL}}, 0,
		{{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, 2,
		"",
		"GET\n" 
		"/\n" 
		"\n" 
		"host:example.amazonaws.com\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
		false
	},
	{
		"get-vanilla-query-order-key", "GET", "/",
		{{"Param1", "value2"}, {"Param1", "Value1"}}, 2,
		{{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, 2,
		"",
		"GET\n" 
		"/\n" 
		"Param1=Value1&Param1=value2\n" 
		"host:example.amazonaws.com\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1",
		false
	},
	{
		"get-vanilla-query-order-key-case", "GET", "/",
		{{"Param2", "value2"}, {"Param1", "value1"}}, 2,
		{{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, 2,
		"",
		"GET\n" 
		"/\n" 
		"Param1=value1&Param2=value2\n" 
		"host:example.amazonaws.com\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
		false
	},
	{
		"get-vanilla-query-order-value", "GET", "/",
		{{"Param1", "value2"}, {"Param1", "value1"}}, 2,
		{{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, 2,
		"",
		"GET\n" 
		"/\n" 
		"Param1=value1&Param1=value2\n" 
		"host:example.amazonaws.com\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
		false
	},
	{
		"get-vanilla-query-unreserved", "GET", "/",
		{{"-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}}, 1,
		{{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, 2,
		"",
		"GET\n" 
		"/\n" 
		"-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n" 
		"host:example.amazonaws.com\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
		false
	},
	{
		"get-vanilla-utf8-query", "GET", "/",
		{{"\xe1" "\x88" "\xb4" "", "bar"}}, 1,
		{{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, 2,
		"",
		"GET\n" 
		"/\n" 
		"%E1%88%B4=bar\n" 
		"host:example.amazonaws.com\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
		false
	},
	{
		"post-header-key-case", "POST", "/",
		{{NULL, NULL}}, 0,
		{{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, 2,
		"",
		"POST\n" 
		"/\n" 
		"\n" 
		"host:example.amazonaws.com\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
		false
	},
	{
		"post-header-key-sort", "POST", "/",
		{{NULL, NULL}}, 0,
		{{"Host", "example.amazonaws.com"}, {"My-Header1", "value1"}, {"X-Amz-Date", "20150830T123600Z"}}, 3,
		"",
		"POST\n" 
		"/\n" 
		"\n" 
		"host:example.amazonaws.com\n" 
		"my-header1:value1\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;my-header1;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
		false
	},
	{
		"post-header-value-case", "POST", "/",
		{{NULL, NULL}}, 0,
		{{"Host", "example.amazonaws.com"}, {"My-Header1", "VALUE1"}, {"X-Amz-Date", "20150830T123600Z"}}, 3,
		"",
		"POST\n" 
		"/\n" 
		"\n" 
		"host:example.amazonaws.com\n" 
		"my-header1:VALUE1\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;my-header1;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
		false
	},
	{
		"post-vanilla", "POST", "/",
		{{NULL, NULL}}, 0,
		{{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, 2,
		"",
		"POST\n" 
		"/\n" 
		"\n" 
		"host:example.amazonaws.com\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
		false
	},
	{
		"post-vanilla-empty-query-value", "POST", "/",
		{{"Param1", "value1"}}, 1,
		{{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, 2,
		"",
		"POST\n" 
		"/\n" 
		"Param1=value1\n" 
		"host:example.amazonaws.com\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
		false
	},
	{
		"post-vanilla-query", "POST", "/",
		{{"Param1", "value1"}}, 1,
		{{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, 2,
		"",
		"POST\n" 
		"/\n" 
		"Param1=value1\n" 
		"host:example.amazonaws.com\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
		false
	},
	{
		"post-x-www-form-urlencoded", "POST", "/",
		{{NULL, NULL}}, 0,
		{{"Content-Type", "application/x-www-form-urlencoded"}, {"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, 3,
		"Param1=value1",
		NULL,
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
		true
	},
	{
		"post-x-www-form-urlencoded-parameters", "POST", "/",
		{{NULL, NULL}}, 0,
		{{"Content-Type", "application/x-www-form-urlencoded; charset=utf8"}, {"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, 3,
		"Param1=value1",
		NULL,
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-date, Signature=1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe",
		true
	},
	{
		"post-sts-header-after", "POST", "/",
		{{NULL, NULL}}, 0,
		{{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}}, 2,
		"",
		"POST\n" 
		"/\n" 
		"\n" 
		"host:example.amazonaws.com\n" 
		"x-amz-date:20150830T123600Z\n" 
		"\n" 
		"host;x-amz-date\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
		false
	},
	{
		"post-sts-header-before", "POST", "/",
		{{NULL, NULL}}, 0,
		{{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}, {"X-Amz-Security-Token", "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="}}, 3,
		"",
		"POST\n" 
		"/\n" 
		"\n" 
		"host:example.amazonaws.com\n" 
		"x-amz-date:20150830T123600Z\n" 
		"x-amz-security-token:AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==\n" 
		"\n" 
		"host;x-amz-date;x-amz-security-token\n" 
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"AWS4-HMAC-SHA256\n" 
		"20150830T123600Z\n" 
		"20150830/us-east-1/service/aws4_request\n" 
		"c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
		false
	},
};

static const char suite_secret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

static void
check_vector(const sigv4_vector *v)
{
	pv_s3_kv	query[MAXKV];
	pv_s3_kv	headers[MAXKV];
	char		hash[PV_S3_SHA256_HEX_LEN + 1];
	char	   *creq;
	char	   *sts;
	char	   *authz;
	pv_s3_sign_input in;

	for (size_t i = 0; i < v->nquery; i++)
		query[i] = (pv_s3_kv) {v->query[i][0], v->query[i][1]};
	for (size_t i = 0; i < v->nheaders; i++)
		headers[i] = (pv_s3_kv) {v->headers[i][0], v->headers[i][1]};
	pv_s3_sha256_hex(v->body, strlen(v->body), hash);
	in = (pv_s3_sign_input) {v->method, v->path, query, v->nquery, headers, v->nheaders, hash,
		"20150830T123600Z", "us-east-1", "service"};
	creq = pv_s3_canonical_request(&in, NULL);
	sts = pv_s3_string_to_sign(&in, creq);
	authz = pv_s3_authorization(&in, "AKIDEXAMPLE", suite_secret, strlen(suite_secret));
	if (v->creq != NULL)
		ck_assert_msg(strcmp(creq, v->creq) == 0, "%s: canonical request\n%s\n--- expected\n%s",
					  v->name, creq, v->creq);
	if (v->sts != NULL)
		ck_assert_msg(strcmp(sts, v->sts) == 0, "%s: string to sign\n%s\n--- expected\n%s",
					  v->name, sts, v->sts);
	if (v->form && strstr(v->name, "parameters") != NULL)
		ck_assert_msg(strcmp(strstr(authz, "Signature="), strstr(v->authz, "Signature=")) == 0,
					  "%s: authorization\n%s\n--- expected\n%s", v->name, authz, v->authz);
	else
		ck_assert_msg(strcmp(authz, v->authz) == 0, "%s: authorization\n%s\n--- expected\n%s",
					  v->name, authz, v->authz);
	free(creq);
	free(sts);
	free(authz);
}

START_TEST(test_sigv4_suite)
{
	for (size_t i = 0; i < sizeof(sigv4_vectors) / sizeof(sigv4_vectors[0]); i++)
		check_vector(&sigv4_vectors[i]);
}
END_TEST

/*
 * The worked examples of "Signature Calculations for the Authorization
 * Header" in the Amazon S3 API reference: examplebucket, 20130524T000000Z,
 * AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.
 */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
static const char s3_secret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

static char *
s3_example(const char *method, const char *path, const pv_s3_kv *query, size_t nquery,
		   const pv_s3_kv *headers, size_t nheaders, const char *payload_hash, char **creq)
{
	pv_s3_sign_input in = {method, path, query, nquery, headers, nheaders, payload_hash,
	"20130524T000000Z", "us-east-1", "s3"};

	if (creq != NULL)
		*creq = pv_s3_canonical_request(&in, NULL);
	return pv_s3_authorization(&in, "AKIAIOSFODNN7EXAMPLE", s3_secret, strlen(s3_secret));
}

START_TEST(test_sigv4_s3_examples)
{
	char	   *auth;
	char	   *creq;
	char	   *sts;
	char		hash[PV_S3_SHA256_HEX_LEN + 1];

	/* GET Object, first 10 bytes */
	{
		pv_s3_kv	h[] = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"},
		{"x-amz-content-sha256", EMPTY_SHA256}, {"x-amz-date", "20130524T000000Z"}};
		pv_s3_sign_input in = {"GET", "/test.txt", NULL, 0, h, 4, EMPTY_SHA256,
		"20130524T000000Z", "us-east-1", "s3"};

		auth = s3_example("GET", "/test.txt", NULL, 0, h, 4, EMPTY_SHA256, &creq);
		ck_assert_str_eq(creq,
						 "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
						 "x-amz-content-sha256:" EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
						 "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256);
		sts = pv_s3_string_to_sign(&in, creq);
		ck_assert_str_eq(sts, "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
						 "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
		ck_assert_str_eq(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
						 "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
						 "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
		free(auth);
		free(creq);
		free(sts);
	}
	/* PUT Object: '$' in the key is encoded in the canonical URI */
	{
		const char *body = "Welcome to Amazon S3.";
		pv_s3_kv	h[5];

		pv_s3_sha256_hex(body, strlen(body), hash);
		ck_assert_str_eq(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
		h[0] = (pv_s3_kv) {"Host", "examplebucket.s3.amazonaws.com"};
		h[1] = (pv_s3_kv) {"Date", "Fri, 24 May 2013 00:00:00 GMT"};
		h[2] = (pv_s3_kv) {"x-amz-date", "20130524T000000Z"};
		h[3] = (pv_s3_kv) {"x-amz-storage-class", "REDUCED_REDUNDANCY"};
		h[4] = (pv_s3_kv) {"x-amz-content-sha256", hash};
		auth = s3_example("PUT", "/test$file.text", NULL, 0, h, 5, hash, &creq);
		ck_assert_ptr_nonnull(strstr(creq, "PUT\n/test%24file.text\n"));
		ck_assert_ptr_nonnull(strstr(auth, "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
									 "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"));
		free(auth);
		free(creq);
	}
	/* GET Bucket lifecycle: a subresource without value signs as "lifecycle=" */
	{
		pv_s3_kv	q[] = {{"lifecycle", NULL}};
		pv_s3_kv	h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
		{"x-amz-content-sha256", EMPTY_SHA256}, {"x-amz-date", "20130524T000000Z"}};

		auth = s3_example("GET", "/", q, 1, h, 3, EMPTY_SHA256, &creq);
		ck_assert_ptr_nonnull(strstr(creq, "GET\n/\nlifecycle=\n"));
		ck_assert_ptr_nonnull(strstr(auth, "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
		free(auth);
		free(creq);
	}
	/* GET Bucket (list objects): parameters sorted */
	{
		pv_s3_kv	q[] = {{"prefix", "J"}, {"max-keys", "2"}};
		pv_s3_kv	h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
		{"x-amz-content-sha256", EMPTY_SHA256}, {"x-amz-date", "20130524T000000Z"}};

		auth = s3_example("GET", "/", q, 2, h, 3, EMPTY_SHA256, &creq);
		ck_assert_ptr_nonnull(strstr(creq, "GET\n/\nmax-keys=2&prefix=J\n"));
		ck_assert_ptr_nonnull(strstr(auth, "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
		free(auth);
		free(creq);
	}
}
END_TEST

START_TEST(test_sigv4_long_secret)
{
	/* secrets longer than the stack buffer take the sodium_malloc path */
	char		secret[600];
	uint8_t		k1[32];
	uint8_t		k2[32];
	pv_s3_sign_input in = {"GET", "/", NULL, 0, NULL, 0, EMPTY_SHA256, "20150830T123600Z",
	"us-east-1", "s3"};
	char	   *a;

	memset(secret, 'k', sizeof(secret));
	pv_s3_signing_key(secret, sizeof(secret), "20150830T123600Z", "us-east-1", "s3", k1);
	pv_s3_signing_key(secret, sizeof(secret), "20150830", "us-east-1", "s3", k2);
	ck_assert_mem_eq(k1, k2, 32);
	pv_s3_signing_key(secret, sizeof(secret) - 1, "20150830", "us-east-1", "s3", k2);
	ck_assert(memcmp(k1, k2, 32) != 0);
	a = pv_s3_authorization(&in, "AK", secret, sizeof(secret));
	ck_assert_ptr_nonnull(strstr(a, "Credential=AK/20150830/us-east-1/s3/aws4_request, SignedHeaders=, Signature="));
	free(a);
}
END_TEST

/* ------------------------------------------------------------ encoding */

static char *
enc(const char *s, bool keep_slash)
{
	pv_buf		b;

	pv_buf_init(&b);
	pv_s3_uri_encode(&b, s, strlen(s), keep_slash);
	return (char *) pv_buf_steal(&b, NULL);
}

START_TEST(test_uri_encode)
{
	static const struct
	{
		const char *in;
		bool		slash;
		const char *out;
	}			cases[] = {
		{"", false, ""},
		{"AZaz09-._~", false, "AZaz09-._~"},
		{"a b", false, "a%20b"},
		{"a+b=c&d", false, "a%2Bb%3Dc%26d"},
		{"dir/sub/key", true, "dir/sub/key"},
		{"dir/sub/key", false, "dir%2Fsub%2Fkey"},
		{"100%", true, "100%25"},
		{"\xe1\x88\xb4", false, "%E1%88%B4"},
		{"*'()!$", true, "%2A%27%28%29%21%24"},
		{"\x01\x7f\xff", false, "%01%7F%FF"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char	   *o = enc(cases[i].in, cases[i].slash);

		ck_assert_msg(strcmp(o, cases[i].out) == 0, "encode \"%s\": %s", cases[i].in, o);
		free(o);
	}
}
END_TEST

START_TEST(test_canonical_query)
{
	pv_s3_kv	q1[] = {{"prefix", "a/b c"}, {"list-type", "2"}, {"max-keys", "1000"},
	{"continuation-token", "1/2+3=="}, {"start-after", NULL}};
	pv_s3_kv	q2[] = {{"b", "2"}, {"a", "2"}, {"a", "1"}, {"B", "x"}, {"a~", ""}};
	pv_s3_kv	q3[] = {{"uploads", NULL}};
	char	   *s;

	s = pv_s3_canonical_query(q1, 5);
	ck_assert_str_eq(s, "continuation-token=1%2F2%2B3%3D%3D&list-type=2&max-keys=1000&prefix=a%2Fb%20c&start-after=");
	free(s);
	s = pv_s3_canonical_query(q2, 5);
	ck_assert_str_eq(s, "B=x&a=1&a=2&a~=&b=2");
	free(s);
	s = pv_s3_canonical_query(q3, 1);
	ck_assert_str_eq(s, "uploads=");
	free(s);
	s = pv_s3_canonical_query(NULL, 0);
	ck_assert_str_eq(s, "");
	free(s);
}
END_TEST

START_TEST(test_canonical_headers)
{
	pv_s3_kv	h[] = {{"X-B", " \t two  \t words \t"}, {"Host", "h"}, {"x-a", ""}, {"x-b", "second"}};
	pv_s3_sign_input in = {"PUT", "/b/k 1", NULL, 0, h, 4, "UNSIGNED-PAYLOAD", "20150830T123600Z",
	"us-east-1", "s3"};
	char	   *signed_headers;
	char	   *creq = pv_s3_canonical_request(&in, &signed_headers);

	ck_assert_str_eq(creq, "PUT\n/b/k%201\n\nhost:h\nx-a:\nx-b:two words,second\n\nhost;x-a;x-b\nUNSIGNED-PAYLOAD");
	ck_assert_str_eq(signed_headers, "host;x-a;x-b");
	free(creq);
	free(signed_headers);
}
END_TEST

START_TEST(test_amz_date)
{
	char		d[PV_S3_AMZ_DATE_LEN + 1];

	pv_s3_amz_date(1440938160, d);
	ck_assert_str_eq(d, "20150830T123600Z");
	pv_s3_amz_date(0, d);
	ck_assert_str_eq(d, "19700101T000000Z");
}
END_TEST

/* ------------------------------------------------------------ hashes */

static void
md5_hex(const char *s, char out[33])
{
	uint8_t		m[PV_S3_MD5_LEN];
	pv_err		err;

	ck_assert_msg(pv_s3_md5(s, strlen(s), m, &err) == 0, "%s", err.msg);
	pv_hex_encode(m, sizeof(m), out);
}

/* MD5 comes from libcrypto: RFC 1321's test suite, and Content-MD5 values computed elsewhere. */
START_TEST(test_md5_rfc1321)
{
	/* RFC 1321, A.5 test suite */
	static const char *const v[][2] = {
		{"", "d41d8cd98f00b204e9800998ecf8427e"},
		{"a", "0cc175b9c0f1b6a831c399e269772661"},
		{"abc", "900150983cd24fb0d6963f7d28e17f72"},
		{"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
		{"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
		{"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"},
		{"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
		"57edf4a22be3c955ac49da2e2107b67a"},
	};
	/* Content-MD5 headers (base64 of the digest; openssl dgst -md5 -binary | base64) */
	static const char *const b[][2] = {
		{"", "1B2M2Y8AsgTpgAmY7PhCfg=="},
		{"abc", "kAFQmDzST7DWlj99KOF/cg=="},
		{"message digest", "+WtpfXy3k41SWi8xqvFh0A=="},
		{"The quick brown fox jumps over the lazy dog", "nhB9nTcrtoJr2B01QqQZ1g=="},
	};
	char		hex[33];
	char		b64[PV_S3_MD5_BASE64_LEN + 1];
	uint8_t		m[PV_S3_MD5_LEN];
	pv_err		err;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
	{
		md5_hex(v[i][0], hex);
		ck_assert_msg(strcmp(hex, v[i][1]) == 0, "md5(\"%s\") = %s", v[i][0], hex);
	}
	for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
	{
		ck_assert_int_eq(pv_s3_md5(b[i][0], strlen(b[i][0]), m, &err), 0);
		pv_s3_md5_base64(m, b64);
		ck_assert_msg(strcmp(b64, b[i][1]) == 0, "Content-MD5 of \"%s\" = %s", b[i][0], b64);
	}
}
END_TEST

/* One pass for both digests gives what each gives alone, at every length around the 32 KiB step. */
START_TEST(test_hash_body)
{
	size_t		len = 1000003;
	uint8_t    *data = pv_malloc(len);
	uint8_t		one[PV_S3_MD5_LEN];
	uint8_t		both_md5[PV_S3_MD5_LEN];
	char		sha1[PV_S3_SHA256_HEX_LEN + 1];
	char		sha2[PV_S3_SHA256_HEX_LEN + 1];
	static const size_t lens[] = {0, 1, 63, 64, 65, 32767, 32768, 32769, 65536 + 7, 1000003};
	pv_err		err;

	tu_fill(data, len, 42);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
	{
		ck_assert_int_eq(pv_s3_md5(data, lens[i], one, &err), 0);
		ck_assert_int_eq(pv_s3_hash_body(data, lens[i], sha1, both_md5, &err), 0);
		pv_s3_sha256_hex(data, lens[i], sha2);
		ck_assert_msg(strcmp(sha1, sha2) == 0, "sha256 of %zu bytes", lens[i]);
		ck_assert_msg(memcmp(both_md5, one, PV_S3_MD5_LEN) == 0, "md5 of %zu bytes", lens[i]);
	}
	ck_assert_int_eq(pv_s3_hash_body("", 0, sha1, both_md5, &err), 0);
	ck_assert_str_eq(sha1, EMPTY_SHA256);
	pv_hex_encode(both_md5, sizeof(both_md5), sha2);
	ck_assert_str_eq(sha2, "d41d8cd98f00b204e9800998ecf8427e");
	free(data);
}
END_TEST

/* The payload SHA-256 (libcrypto) against libsodium's, at every length up to 300 bytes and at 1 MiB + 77. */
START_TEST(test_sha256_vs_libsodium)
{
	size_t		max = 300;
	uint8_t    *data = pv_malloc((1 << 20) + 77);
	char		ours[PV_S3_SHA256_HEX_LEN + 1];
	char		theirs[PV_S3_SHA256_HEX_LEN + 1];
	uint8_t		h[crypto_hash_sha256_BYTES];
	uint8_t		md5[PV_S3_MD5_LEN];
	pv_err		err;

	tu_fill(data, (1 << 20) + 77, 9);
	for (size_t len = 0; len <= max + 1; len++)
	{
		size_t		n = len == max + 1 ? (1 << 20) + 77 : len;

		crypto_hash_sha256(h, data, n);
		pv_hex_encode(h, sizeof(h), theirs);
		ck_assert_int_eq(pv_s3_hash_body(data, n, ours, md5, &err), 0);
		ck_assert_msg(strcmp(ours, theirs) == 0, "hash_body sha256 of %zu bytes: %s, libsodium %s", n, ours, theirs);
	}
	free(data);
}
END_TEST

/* ------------------------------------------------------------ XML */

#define XS(s) s, strlen(s)

START_TEST(test_xml_error)
{
	pv_s3_error_doc e;

	ck_assert_int_eq(pv_s3_xml_parse_error(XS("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
											  "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>"
											  "<Key>a/b</Key><RequestId>tx123</RequestId></Error>"), &e), 0);
	ck_assert_str_eq(e.code, "NoSuchKey");
	ck_assert_str_eq(e.message, "The specified key does not exist.");
	ck_assert_str_eq(e.request_id, "tx123");
	ck_assert_str_eq(e.key, "a/b");
	/* control characters never reach a message; entities are decoded */
	ck_assert_int_eq(pv_s3_xml_parse_error(XS("<Error><Code>X</Code><Message>a&#9;b &amp; c&#10;d&#x7f;</Message></Error>"), &e), 0);
	ck_assert_str_eq(e.message, "a?b & c?d?");
	/* raw control characters are not XML at all */
	ck_assert_int_eq(pv_s3_xml_parse_error(XS("<Error><Code>X</Code><Message>a\x1b[31mb</Message></Error>"), &e), -1);
	ck_assert_str_eq(e.request_id, "");
	/* long fields are cut, not overflowed */
	{
		pv_buf		b;

		pv_buf_init(&b);
		pv_buf_append_str(&b, "<Error><Code>");
		for (int i = 0; i < 1000; i++)
			pv_buf_append_str(&b, "C");
		pv_buf_append_str(&b, "</Code></Error>");
		ck_assert_int_eq(pv_s3_xml_parse_error((const char *) b.data, b.len, &e), 0);
		ck_assert_uint_eq(strlen(e.code), sizeof(e.code) - 1);
		pv_buf_free(&b);
	}
	/* not an Error document */
	ck_assert_int_eq(pv_s3_xml_parse_error(XS("<html><body>Bad Gateway</body></html>"), &e), -1);
	ck_assert_int_eq(pv_s3_xml_parse_error(XS(""), &e), -1);
	ck_assert_int_eq(pv_s3_xml_parse_error(NULL, 0, &e), -1);
	ck_assert_int_eq(pv_s3_xml_parse_error(XS("<Error><Code>Slow"), &e), -1);
	ck_assert_int_eq(pv_s3_xml_parse_error(XS("Bad Gateway"), &e), -1);
	ck_assert_str_eq(e.code, "");
}
END_TEST

START_TEST(test_xml_hostile)
{
	pv_s3_error_doc e;
	pv_s3_list_result l;
	pv_err		err;

	/* entity expansion ("billion laughs") and external entities: any DTD is refused */
	ck_assert_int_eq(pv_s3_xml_parse_error(XS(
											  "<?xml version=\"1.0\"?><!DOCTYPE Error [<!ENTITY a \"aaaaaaaaaa\">"
											  "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"
											  "<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]><Error><Code>&d;</Code></Error>"), &e), -1);
	ck_assert_int_eq(pv_s3_xml_parse_error(XS(
											  "<?xml version=\"1.0\"?><!DOCTYPE Error [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
											  "<Error><Code>&x;</Code></Error>"), &e), -1);
	ck_assert_int_eq(pv_s3_xml_parse_list(XS(
											 "<!DOCTYPE ListBucketResult SYSTEM \"http://127.0.0.1:1/evil.dtd\">"
											 "<ListBucketResult><Contents><Key>k</Key><Size>1</Size></Contents></ListBucketResult>"), &l, &err), -1);
	/* an undefined entity is a parse error */
	ck_assert_int_eq(pv_s3_xml_parse_error(XS("<Error><Code>&undefined;</Code></Error>"), &e), -1);
	/* deep nesting */
	{
		pv_buf		b;

		pv_buf_init(&b);
		for (int i = 0; i < 100000; i++)
			pv_buf_append_str(&b, "<a>");
		ck_assert_int_eq(pv_s3_xml_parse_list((const char *) b.data, b.len, &l, &err), -1);
		pv_buf_free(&b);
	}
}
END_TEST

START_TEST(test_xml_list)
{
	const char *doc =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Name>bucket</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
		"<IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
		"<Contents><Key>p/a&amp;b</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>"
		"<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size><StorageClass>STANDARD</StorageClass></Contents>"
		"<Contents><Key><![CDATA[p/c]]></Key><Size>0</Size><LastModified>2026-11-23T13:00:00Z</LastModified></Contents>"
		"</ListBucketResult>";
	pv_s3_list_result l;
	pv_err		err;

	ck_assert_int_eq(pv_s3_xml_parse_list(XS(doc), &l, &err), 0);
	ck_assert_uint_eq(l.count, 2);
	ck_assert(l.truncated);
	ck_assert_str_eq(l.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	ck_assert_str_eq(l.entries[0].key, "p/a&b");
	ck_assert_uint_eq(l.entries[0].size, 434234);
	ck_assert_int_eq(l.entries[0].mtime, 1255369830);
	ck_assert_str_eq(l.entries[1].key, "p/c");
	ck_assert_uint_eq(l.entries[1].size, 0);
	ck_assert_int_eq(l.entries[1].mtime, 1795438800);
	pv_s3_list_result_free(&l);

	ck_assert_int_eq(pv_s3_xml_parse_list(XS("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"), &l, &err), 0);
	ck_assert_uint_eq(l.count, 0);
	ck_assert(!l.truncated);
	ck_assert_ptr_null(l.next_token);
	pv_s3_list_result_free(&l);
}
END_TEST

START_TEST(test_xml_list_malformed)
{
	static const char *const bad[] = {
		"",
		"<ListBucketResult><Contents><Key>k</Key><Size>1</Size></Contents>",	/* truncated */
		"<Error><Code>AccessDenied</Code></Error>",		/* wrong root */
		"<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>",	/* no Size */
		"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",	/* no Key */
		"<ListBucketResult><Contents><Key></Key><Size>1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>12a</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999999</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size></Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k<b>x</b></Key><Size>1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>1</Size><LastModified>yesterday</LastModified></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>1</Size><LastModified>2009-13-12T17:50:30Z</LastModified></Contents></ListBucketResult>",
		"<ListBucketResult><IsTruncated>true</IsTruncated><IsTruncated>",
		"\x00\x01\x02",
	};
	pv_s3_list_result l;
	pv_err		err;
	pv_buf		b;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		pv_err_clear(&err);
		ck_assert_msg(pv_s3_xml_parse_list(bad[i], strlen(bad[i]) + (i == 14 ? 3 : 0), &l, &err) == -1,
					  "accepted: %s", bad[i]);
		ck_assert(err.msg[0] != '\0');
		ck_assert_ptr_null(l.entries);
	}
	/* a key longer than any S3 key */
	pv_buf_init(&b);
	pv_buf_append_str(&b, "<ListBucketResult><Contents><Key>");
	for (int i = 0; i < PV_S3_XML_KEY_MAX + 1; i++)
		pv_buf_append_str(&b, "k");
	pv_buf_append_str(&b, "</Key><Size>1</Size></Contents></ListBucketResult>");
	ck_assert_int_eq(pv_s3_xml_parse_list((const char *) b.data, b.len, &l, &err), -1);
	ck_assert_ptr_nonnull(strstr(err.msg, "longer than"));
	pv_buf_free(&b);
}
END_TEST

START_TEST(test_xml_multipart)
{
	char	   *id;
	char	   *etag;
	pv_s3_error_doc e;
	pv_err		err;

	ck_assert_int_eq(pv_s3_xml_parse_initiate(XS(
												 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
												 "<Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkIElE-1</UploadId></InitiateMultipartUploadResult>"), &id, &err), 0);
	ck_assert_str_eq(id, "VXBsb2FkIElE-1");
	free(id);
	ck_assert_int_eq(pv_s3_xml_parse_initiate(XS("<InitiateMultipartUploadResult><Bucket>b</Bucket></InitiateMultipartUploadResult>"), &id, &err), -1);
	ck_assert_ptr_null(id);
	ck_assert_int_eq(pv_s3_xml_parse_initiate(XS("<InitiateMultipartUploadResult><UploadId/></InitiateMultipartUploadResult>"), &id, &err), -1);
	ck_assert_int_eq(pv_s3_xml_parse_initiate(XS("<Error><Code>AccessDenied</Code></Error>"), &id, &err), -1);

	ck_assert_int_eq(pv_s3_xml_parse_complete(XS(
												 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
												 "<Location>http://b/k</Location><Bucket>b</Bucket><Key>k</Key><ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>"
												 "</CompleteMultipartUploadResult>"), &etag, &e, &err), 0);
	ck_assert_str_eq(etag, "\"3858f62230ac3c915f300c664312c11f-9\"");
	free(etag);
	/* HTTP 200 with an error, after keep-alive whitespace */
	ck_assert_int_eq(pv_s3_xml_parse_complete(XS(
												 "\n  \n   \n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
												 "<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message>"
												 "<RequestId>656c76696e6727732072657175657374</RequestId></Error>"), &etag, &e, &err), 1);
	ck_assert_ptr_null(etag);
	ck_assert_str_eq(e.code, "InternalError");
	ck_assert_str_eq(e.request_id, "656c76696e6727732072657175657374");
	ck_assert_int_eq(pv_s3_xml_parse_complete(XS("   "), &etag, &e, &err), -1);
	ck_assert_int_eq(pv_s3_xml_parse_complete(XS("<CompleteMultipartUploadResult><ETag>x"), &etag, &e, &err), -1);
	ck_assert_int_eq(pv_s3_xml_parse_complete(XS("<Other/>"), &etag, &e, &err), -1);
}
END_TEST

START_TEST(test_xml_delete)
{
	pv_s3_delete_result r;
	pv_err		err;

	ck_assert_int_eq(pv_s3_xml_parse_delete(XS(
											   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
											   "<Deleted><Key>p/ok</Key></Deleted>"
											   "<Error><Key>p/denied</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
											   "<Error><Key>p/gone</Key><Code>NoSuchKey</Code></Error>"
											   "</DeleteResult>"), &r, &err), 0);
	ck_assert_uint_eq(r.deleted, 1);
	ck_assert_uint_eq(r.count, 2);
	ck_assert_str_eq(r.errors[0].key, "p/denied");
	ck_assert_str_eq(r.errors[0].code, "AccessDenied");
	ck_assert_str_eq(r.errors[0].message, "Access Denied");
	ck_assert_str_eq(r.errors[1].code, "NoSuchKey");
	ck_assert_str_eq(r.errors[1].message, "");
	pv_s3_delete_result_free(&r);
	ck_assert_int_eq(pv_s3_xml_parse_delete(XS("<DeleteResult/>"), &r, &err), 0);
	ck_assert_uint_eq(r.count, 0);
	pv_s3_delete_result_free(&r);
	ck_assert_int_eq(pv_s3_xml_parse_delete(XS("<Error><Code>MalformedXML</Code></Error>"), &r, &err), -1);
	ck_assert_int_eq(pv_s3_xml_parse_delete(XS("<DeleteResult><Error><Key>"), &r, &err), -1);
}
END_TEST

START_TEST(test_xml_bodies)
{
	const char *etags[] = {"\"a1\"", "\"b2\""};
	const char *keys[] = {"p/a&b", "p/<c>"};
	char	   *s = pv_s3_xml_complete_body(etags, 2);
	pv_s3_delete_result r;
	pv_err		err;

	ck_assert_ptr_nonnull(strstr(s, "<Part><PartNumber>1</PartNumber><ETag>&quot;a1&quot;</ETag></Part>"
								 "<Part><PartNumber>2</PartNumber><ETag>&quot;b2&quot;</ETag></Part></CompleteMultipartUpload>"));
	free(s);
	s = pv_s3_xml_delete_body(keys, 2, true);
	ck_assert_ptr_nonnull(strstr(s, "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>"
								 "<Object><Key>p/a&amp;b</Key></Object><Object><Key>p/&lt;c&gt;</Key></Object></Delete>"));
	/* what we write, libxml2 reads back */
	ck_assert_int_eq(pv_s3_xml_parse_delete(XS(s), &r, &err), -1);	/* not a DeleteResult */
	free(s);
}
END_TEST

/* ------------------------------------------------------------ configuration */

static void
cfg_s3(pv_config *cfg)
{
	pv_err		err;

	pv_config_init(cfg);
	ck_assert_int_eq(pv_config_set(cfg, "repo", "type", "s3", "test", &err), 0);
	ck_assert_int_eq(pv_config_set(cfg, "repo", "s3_endpoint", "http://127.0.0.1:1", "test", &err), 0);
	ck_assert_int_eq(pv_config_set(cfg, "repo", "s3_bucket", "bkt", "test", &err), 0);
}

static void
cfg_set(pv_config *cfg, const char *key, const char *value)
{
	pv_err		err;

	ck_assert_msg(pv_config_set(cfg, "repo", key, value, "test", &err) == 0, "%s", err.msg);
}

/*
 * Tests that change AWS_* put them back (CK_FORK=no runs every test in one
 * process, and the live tests need the real credentials).
 */
static const char *const aws_vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"};
static char *aws_saved[3];

static void
env_save(void)
{
	for (int i = 0; i < 3; i++)
	{
		const char *v = getenv(aws_vars[i]);

		aws_saved[i] = v ? pv_strdup(v) : NULL;
	}
}

static void
env_restore(void)
{
	for (int i = 0; i < 3; i++)
	{
		if (aws_saved[i] != NULL)
			setenv(aws_vars[i], aws_saved[i], 1);
		else
			unsetenv(aws_vars[i]);
		free(aws_saved[i]);
		aws_saved[i] = NULL;
	}
}

static void
env_creds(void)
{
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-for-tests", 1);
	unsetenv("AWS_SESSION_TOKEN");
}

/* pv_storage_s3_new must fail with kind, and its message contain what. */
static void
new_fails(pv_config *cfg, pv_err_kind kind, const char *what)
{
	pv_err		err;
	pv_storage *st = pv_storage_s3_new(cfg, &err);

	ck_assert_msg(st == NULL, "accepted; expected \"%s\"", what);
	ck_assert_int_eq(err.kind, kind);
	ck_assert_msg(strstr(err.msg, what) != NULL, "message \"%s\" lacks \"%s\"", err.msg, what);
}

static void
location_is(pv_config *cfg, const char *loc)
{
	pv_err		err;
	pv_storage *st = pv_storage_s3_new(cfg, &err);

	ck_assert_msg(st != NULL, "%s", err.msg);
	ck_assert_str_eq(pv_storage_location(st), loc);
	ck_assert_str_eq(st->ops->name, "s3");
	pv_storage_free(st);
}

START_TEST(test_s3_new_config)
{
	pv_config	cfg;

	env_creds();
	cfg_s3(&cfg);
	location_is(&cfg, "s3://bkt");
	cfg_set(&cfg, "s3_prefix", "/pg/main//");
	location_is(&cfg, "s3://bkt/pg/main");
	cfg_set(&cfg, "s3_prefix", "pg/../x");
	new_fails(&cfg, PV_E_USAGE, "s3_prefix");
	cfg_set(&cfg, "s3_prefix", "");
	cfg_set(&cfg, "s3_bucket", "Not_DNS");
	new_fails(&cfg, PV_E_USAGE, "not a valid bucket name");
	cfg_set(&cfg, "s3_uri_style", "path");
	location_is(&cfg, "s3://Not_DNS");
	cfg_set(&cfg, "s3_bucket", "a/b");
	new_fails(&cfg, PV_E_USAGE, "not a valid bucket name");
	cfg_set(&cfg, "s3_bucket", "bkt");
	cfg_set(&cfg, "s3_endpoint", "ftp://host");
	new_fails(&cfg, PV_E_USAGE, "scheme must be http or https");
	cfg_set(&cfg, "s3_endpoint", "http://host:9000/bucket");
	new_fails(&cfg, PV_E_USAGE, "is not of the form");
	cfg_set(&cfg, "s3_endpoint", "https://user:pw@host");
	new_fails(&cfg, PV_E_USAGE, "is not of the form");
	cfg_set(&cfg, "s3_endpoint", "HTTPS://s3.example.com/");
	location_is(&cfg, "s3://bkt");
	cfg_set(&cfg, "s3_endpoint", "minio.local:9000");
	location_is(&cfg, "s3://bkt");
	pv_config_free(&cfg);

	/* no endpoint: AWS for the region */
	pv_config_init(&cfg);
	cfg_set(&cfg, "type", "s3");
	new_fails(&cfg, PV_E_USAGE, "s3_bucket is not set");
	cfg_set(&cfg, "s3_bucket", "bkt");
	location_is(&cfg, "s3://bkt");
	pv_config_free(&cfg);
}
END_TEST

START_TEST(test_s3_new_credentials)
{
	pv_config	cfg;
	char	   *dir = tu_tempdir();
	char	   *file = pv_asprintf("%s/secret", dir);
	pv_err		err;
	pv_storage *st;

	cfg_s3(&cfg);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	new_fails(&cfg, PV_E_USAGE, "no S3 credentials");
	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	new_fails(&cfg, PV_E_USAGE, "no S3 credentials");
	setenv("AWS_SECRET_ACCESS_KEY", "SK", 1);
	setenv("AWS_SESSION_TOKEN", "TOKEN", 1);
	location_is(&cfg, "s3://bkt");

	/* key + file: both or neither */
	cfg_set(&cfg, "s3_access_key", "test:tester");
	new_fails(&cfg, PV_E_USAGE, "must be set together");
	cfg_set(&cfg, "s3_secret_key_file", file);
	new_fails(&cfg, PV_E_USAGE, "s3_secret_key_file");	/* missing */
	tu_write_file(file, "testing\n", 8, 0644);
	new_fails(&cfg, PV_E_USAGE, "s3_secret_key_file");	/* readable by others */
	tu_write_file(file, "\n", 1, 0600);
	new_fails(&cfg, PV_E_USAGE, "is empty");
	tu_write_file(file, "testing  \r\nsecond line\n", 23, 0600);
	st = pv_storage_s3_new(&cfg, &err);
	ck_assert_msg(st != NULL, "%s", err.msg);
	pv_storage_free(st);
	pv_config_free(&cfg);
	unlink(file);
	tu_rmtree(dir);
	free(file);
	free(dir);
}
END_TEST

/* Nothing listens on 127.0.0.1:1: a refused connection is retried, bounded, and named. */
START_TEST(test_s3_unreachable)
{
	pv_config	cfg;
	pv_err		err;
	pv_storage *st;
	pv_storage_info info;
	pv_log_level level;

	env_creds();
	cfg_s3(&cfg);
	cfg_set(&cfg, "s3_uri_style", "path");
	cfg_set(&cfg, "s3_max_attempts", "3");
	cfg_set(&cfg, "s3_retry_max_time", "2s");
	st = pv_storage_s3_new(&cfg, &err);
	ck_assert_ptr_nonnull(st);
	level = pv_log_get_level();
	pv_log_set_level(PV_LOG_ERROR);		/* the give-up warning is expected */
	ck_assert_int_eq(pv_storage_head(st, "some/key", &info, &err), -1);
	pv_log_set_level(level);
	ck_assert_int_eq(err.kind, PV_E_TRANSIENT);
	ck_assert_msg(strstr(err.msg, "S3 HeadObject \"some/key\" failed after 3 attempts") != NULL, "%s", err.msg);
	ck_assert_msg(strstr(err.msg, "curl error 7") != NULL, "%s", err.msg);
	pv_storage_free(st);
	pv_config_free(&cfg);
}
END_TEST

/* ------------------------------------------------------------ live S3 */

static const char *
live_endpoint(void)
{
	const char *e = getenv("PGVAULT_TEST_S3_ENDPOINT");

	return e && e[0] ? e : NULL;
}

/* A storage on a fresh random prefix; part_size 5 MiB so multipart is cheap to reach. */
static pv_storage *
live_open_cfg(const char *concurrency)
{
	const char *bucket = getenv("PGVAULT_TEST_S3_BUCKET");
	pv_config	cfg;
	pv_err		err;
	pv_storage *st;
	char		prefix[64];

	snprintf(prefix, sizeof(prefix), "unit/%08x%08x", randombytes_random(), randombytes_random());
	pv_config_init(&cfg);
	cfg_set(&cfg, "type", "s3");
	cfg_set(&cfg, "s3_endpoint", live_endpoint());
	cfg_set(&cfg, "s3_bucket", bucket && bucket[0] ? bucket : "pgvault-test");
	cfg_set(&cfg, "s3_uri_style", "path");
	cfg_set(&cfg, "s3_prefix", prefix);
	cfg_set(&cfg, "s3_part_size", "5MiB");
	cfg_set(&cfg, "s3_upload_concurrency", concurrency);
	st = pv_storage_s3_new(&cfg, &err);
	ck_assert_msg(st != NULL, "%s", err.msg);
	pv_config_free(&cfg);
	return st;
}

static pv_storage *
live_open(void)
{
	return live_open_cfg("3");
}

/* Remove whatever the test left under its prefix (a page at a time), then free. */
static void
live_close(pv_storage *st)
{
	pv_err		err;

	for (;;)
	{
		pv_storage_page page;
		const char **keys;

		ck_assert_msg(pv_storage_list(st, "", NULL, 1000, &page, &err) == 0, "%s", err.msg);
		if (page.count == 0)
		{
			pv_storage_page_free(&page);
			break;
		}
		keys = pv_malloc(page.count * sizeof(char *));
		for (size_t i = 0; i < page.count; i++)
			keys[i] = page.entries[i].key;
		ck_assert_msg(pv_storage_remove_many(st, keys, page.count, &err) == 0, "%s", err.msg);
		free(keys);
		pv_storage_page_free(&page);
	}
	pv_storage_free(st);
}

/* Multipart: 3 parts + a short one, concurrency 2; ranges across part boundaries. */
START_TEST(test_live_multipart)
{
	pv_storage *st = live_open_cfg("2");
	size_t		len = 3 * 5 * 1024 * 1024 + 12345;
	uint8_t    *data = pv_malloc(len);
	pv_stream  *w;
	pv_stream  *sink;
	pv_buf		b;
	pv_err		err;
	pv_storage_info info;

	tu_fill(data, len, 7);
	w = pv_storage_open_write(st, "mp/obj", 0, &err);
	ck_assert_ptr_nonnull(w);
	for (size_t off = 0; off < len; off += 777777)
		ck_assert_msg(pv_stream_write(w, data + off, len - off < 777777 ? len - off : 777777, &err) == 0,
					  "%s", err.msg);
	ck_assert_msg(pv_stream_finish(w, &err) == 0, "%s", err.msg);
	pv_stream_free(w);
	ck_assert_int_eq(pv_storage_head(st, "mp/obj", &info, &err), 0);
	ck_assert_uint_eq(info.size, len);
	ck_assert_int_gt(info.mtime, 1700000000);
	pv_buf_init(&b);
	ck_assert_msg(pv_storage_get(st, "mp/obj", len, &b, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(b.len, len);
	ck_assert(memcmp(b.data, data, len) == 0);
	pv_buf_reset(&b);
	sink = pv_stream_buffer_new(&b);
	ck_assert_int_eq(pv_storage_read(st, "mp/obj", 5 * 1024 * 1024 - 10, 20, sink, &err), 0);
	ck_assert_uint_eq(b.len, 20);
	ck_assert_mem_eq(b.data, data + 5 * 1024 * 1024 - 10, 20);
	pv_buf_reset(&b);
	ck_assert_int_eq(pv_storage_read(st, "mp/obj", len, PV_STORAGE_TO_END, sink, &err), 0);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_int_eq(pv_storage_read(st, "mp/obj", len, 0, sink, &err), 0);
	ck_assert_int_eq(pv_storage_read(st, "mp/obj", len + 1, PV_STORAGE_TO_END, sink, &err), -1);
	ck_assert_int_eq(pv_storage_read(st, "mp/obj", len + 1, 0, sink, &err), -1);
	pv_stream_free(sink);
	pv_buf_free(&b);
	free(data);
	live_close(st);
}
END_TEST

/* Put keys many/<i> for i in [from, to) (one thread of the pagination test). */
typedef struct put_range
{
	pv_storage *st;
	size_t		from;
	size_t		to;
	int			failed;
	pv_err		err;
} put_range;

static void *
put_range_run(void *arg)
{
	put_range  *r = arg;

	for (size_t i = r->from; i < r->to && !r->failed; i++)
	{
		char		key[32];

		snprintf(key, sizeof(key), "many/%05zu", i);
		if (pv_storage_put(r->st, key, key, strlen(key), &r->err) != 0)
			r->failed = 1;
	}
	return NULL;
}

/*
 * > 1000 keys, put by 8 threads sharing one storage: pages of 1000 (one
 * ListObjectsV2 each), a page of 1100 (continuation tokens), pages of 400.
 */
START_TEST(test_live_pagination)
{
	pv_storage *st = live_open();
	pv_storage_list_result all = {0};
	pv_storage_page page;
	const char **keys;
	size_t		n = 1100;
	char	   *after = NULL;
	size_t		seen = 0;
	int			pages = 0;
	pv_err		err;
	pthread_t	th[8];
	put_range	ranges[8];

	for (int t = 0; t < 8; t++)
	{
		ranges[t] = (put_range) {st, n * (size_t) t / 8, n * (size_t) (t + 1) / 8, 0, {0}};
		ck_assert_int_eq(pthread_create(&th[t], NULL, put_range_run, &ranges[t]), 0);
	}
	for (int t = 0; t < 8; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < 8; t++)
		ck_assert_msg(!ranges[t].failed, "%s", ranges[t].err.msg);
	ck_assert_int_eq(pv_storage_list_all(st, "many/", &all, &err), 0);
	ck_assert_uint_eq(all.count, n);
	for (size_t i = 0; i < n; i++)
	{
		char		key[32];

		snprintf(key, sizeof(key), "many/%05zu", i);
		ck_assert_str_eq(all.entries[i].key, key);
		ck_assert_uint_eq(all.entries[i].size, strlen(key));
	}
	/* one page of 1100: the driver follows continuation tokens */
	ck_assert_int_eq(pv_storage_list(st, "many/", NULL, 1100, &page, &err), 0);
	ck_assert_uint_eq(page.count, n);
	ck_assert(!page.truncated);
	pv_storage_page_free(&page);
	/* pages of 400 with 'after' */
	do
	{
		ck_assert_int_eq(pv_storage_list(st, "many/", after, 400, &page, &err), 0);
		seen += page.count;
		pages++;
		free(after);
		after = page.count ? pv_strdup(page.entries[page.count - 1].key) : NULL;
		pv_storage_page_free(&page);
	} while (page.truncated);
	free(after);
	ck_assert_uint_eq(seen, n);
	ck_assert_int_eq(pages, 3);
	/* remove_many in one call (two DeleteObjects batches) */
	keys = pv_malloc(n * sizeof(char *));
	for (size_t i = 0; i < n; i++)
		keys[i] = all.entries[i].key;
	ck_assert_msg(pv_storage_remove_many(st, keys, n, &err) == 0, "%s", err.msg);
	free(keys);
	pv_storage_list_result_free(&all);
	ck_assert_int_eq(pv_storage_list(st, "many/", NULL, 10, &page, &err), 0);
	ck_assert_uint_eq(page.count, 0);
	pv_storage_page_free(&page);
	live_close(st);
}
END_TEST

/* A sink error stops the read at once and is passed up unchanged. */
typedef struct fail_sink
{
	pv_stream	base;
	size_t		seen;
} fail_sink;

static int
fail_write(pv_stream *s, const pv_stream_member *m, const uint8_t *d, size_t len, pv_stream_ctx c, pv_err *err)
{
	fail_sink  *f = (fail_sink *) s;

	f->seen += len;
	return f->seen > 100000 ? pv_err_set(err, PV_E_CORRUPT, 0, "sink says no") : 0;
}

static int
fail_finish(pv_stream *s, pv_err *err)
{
	return 0;
}

static void
fail_free(pv_stream *s)
{
}

static const pv_stream_ops fail_ops = {fail_write, fail_finish, fail_free};

START_TEST(test_live_sink_error)
{
	pv_storage *st = live_open();
	size_t		len = 1 << 20;
	uint8_t    *data = pv_calloc(1, len);
	fail_sink	sink = {{&fail_ops, NULL}, 0};
	pv_err		err;

	ck_assert_int_eq(pv_storage_put(st, "s/obj", data, len, &err), 0);
	ck_assert_int_eq(pv_storage_read(st, "s/obj", 0, PV_STORAGE_TO_END, &sink.base, &err), -1);
	ck_assert_int_eq(err.kind, PV_E_CORRUPT);
	ck_assert_str_eq(err.msg, "sink says no");
	free(data);
	live_close(st);
}
END_TEST

Suite *
suite_s3(void)
{
	Suite	   *s = suite_create("s3");
	TCase	   *tc = tcase_create("sigv4");

	tcase_add_test(tc, test_sigv4_suite);
	tcase_add_test(tc, test_sigv4_s3_examples);
	tcase_add_test(tc, test_sigv4_long_secret);
	tcase_add_test(tc, test_uri_encode);
	tcase_add_test(tc, test_canonical_query);
	tcase_add_test(tc, test_canonical_headers);
	tcase_add_test(tc, test_amz_date);
	tcase_add_test(tc, test_md5_rfc1321);
	tcase_add_test(tc, test_hash_body);
	tcase_add_test(tc, test_sha256_vs_libsodium);
	suite_add_tcase(s, tc);

	tc = tcase_create("xml");
	tcase_add_test(tc, test_xml_error);
	tcase_add_test(tc, test_xml_hostile);
	tcase_add_test(tc, test_xml_list);
	tcase_add_test(tc, test_xml_list_malformed);
	tcase_add_test(tc, test_xml_multipart);
	tcase_add_test(tc, test_xml_delete);
	tcase_add_test(tc, test_xml_bodies);
	suite_add_tcase(s, tc);

	tc = tcase_create("driver");
	tcase_add_checked_fixture(tc, env_save, env_restore);
	tcase_add_test(tc, test_s3_new_config);
	tcase_add_test(tc, test_s3_new_credentials);
	tcase_add_test(tc, test_s3_unreachable);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	if (live_endpoint() != NULL)
	{
		suite_add_tcase(s, pv_conformance_tcase("conformance_s3", live_open, live_close));
		tc = tcase_create("s3_live");
		tcase_add_test(tc, test_live_multipart);
		tcase_add_test(tc, test_live_pagination);
		tcase_add_test(tc, test_live_sink_error);
		tcase_set_timeout(tc, 300);
		suite_add_tcase(s, tc);
	}
	return s;
}
