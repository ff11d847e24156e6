/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the HTML pages of the stack share (smpctl's session report,
 * tools/smpctl/report.c; smp-audit's fleet view, audit/smp-audit-fleet.c):
 * text escaping, and the look of a plot (frame, axis labels, series
 * colours) so that the pages read alike.
 */
#pragma once
#include <stdio.h>

/* s as HTML text or attribute value (NULL: nothing) */
static inline void smp_html(FILE *f, const char *s)
{
	for (; s && *s; s++)
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
			break;
		}
}

/* The pages' common CSS: text, tables, figures, the plots' frame and axis
 * labels, verdicts (.ok, .bad); each page adds its own. */
#define SMP_HTML_CSS                                                                             \
	"body{font-family:sans-serif;margin:2em;color:#111;max-width:60em}\n"                    \
	"h1{font-size:1.4em} h2{font-size:1.1em;border-bottom:1px solid #999}\n"                 \
	"table{border-collapse:collapse} td,th{padding:2px "                                     \
	"8px;text-align:left;vertical-align:top;"                                                \
	"border-bottom:1px solid #ddd;font-size:.9em}\n"                                         \
	"figure{margin:1em 0;break-inside:avoid} figcaption{font-size:.9em;font-weight:bold}\n"  \
	"svg{width:100%;max-width:40em;height:auto} .frame{fill:none;stroke:#888}\n"             \
	".band{fill:#9cf;stroke:none;opacity:.6} .mean{fill:none;stroke:#036;stroke-width:1.5} " \
	".pt{fill:#036}\n"                                                                       \
	".ax{font-size:10px;fill:#444} .ok{color:#060;font-weight:bold} "                        \
	".bad{color:#a00;font-weight:bold}\n"
