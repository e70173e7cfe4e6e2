/*
 * fuzz_s3xml.c - the S3 response parsers: the first byte picks one (mod 5:
 * 0 Error, 1 ListObjectsV2, 2 InitiateMultipartUpload, 3 CompleteMultipartUpload,
 * 4 DeleteObjects), the rest is the body
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "storage/s3_xml.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool inited;
	const char *body;
	size_t		len;
	pv_s3_error_doc edoc;
	pv_s3_list_result list;
	pv_s3_delete_result del;
	char	   *s;
	pv_err		err;

	if (!inited)
	{
		pv_s3_xml_init();
		inited = true;
	}
	if (size < 1)
		return 0;
	body = (const char *) data + 1;
	len = size - 1;
	switch (data[0] % 5)
	{
		case 0:
			(void) pv_s3_xml_parse_error(body, len, &edoc);
			break;
		case 1:
			if (pv_s3_xml_parse_list(body, len, &list, &err) == 0)
			{
				/* every entry has a non-empty key within the bound */
				for (size_t i = 0; i < list.count; i++)
					if (list.entries[i].key == NULL || list.entries[i].key[0] == '\0' ||
						strlen(list.entries[i].key) > PV_S3_XML_KEY_MAX)
						__builtin_trap();
				pv_s3_list_result_free(&list);
			}
			break;
		case 2:
			if (pv_s3_xml_parse_initiate(body, len, &s, &err) == 0)
			{
				if (s == NULL || s[0] == '\0' || strlen(s) > PV_S3_XML_TOKEN_MAX)
					__builtin_trap();
				free(s);
			}
			break;
		case 3:
			if (pv_s3_xml_parse_complete(body, len, &s, &edoc, &err) == 0)
				free(s);
			break;
		case 4:
			if (pv_s3_xml_parse_delete(body, len, &del, &err) == 0)
				pv_s3_delete_result_free(&del);
			break;
	}
	return 0;
}
