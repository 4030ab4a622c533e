/*
 * The programme events as iCalendar (RFC 5545) for calendar programs: GET
 * /v1/events.ics (a programme's events, filter programme_id) and GET
 * /v1/event-registrations.ics (the events the caller has people registered
 * for: an office its office's, a programme team its programme's). One VEVENT
 * per date of an event, UID "<event id>-<n>@kqe" so an update replaces the
 * entry in the calendar; a cancelled event is STATUS:CANCELLED. libical
 * writes the format (escaping, line folding, CRLF): docs/design.md says why
 * and which of its pitfalls we avoid.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libical/ical.h>

#include "handlers.h"
#include "http.h"

#define CALENDAR_EVENT_ROW                                                                         \
	"e.id, e.title, coalesce(e.description, ''), CASE WHEN e.online THEN 'online'"             \
	" ELSE e.place END, e.status, e.dates::text, extract(epoch FROM e.updated_at)::bigint"
/* $1 programme_id */
static const struct db_stmt stmt_programme_events = { "calendar_programme_events",
	"SELECT " CALENDAR_EVENT_ROW
	" FROM events e WHERE ($1::uuid IS NULL OR e.programme_id = $1)"
	" ORDER BY e.starts_at, e.id LIMIT 1000" };
/* The caller's: events with a registration it reads that has a place. */
static const struct db_stmt stmt_registered_events = { "calendar_registered_events",
	"SELECT " CALENDAR_EVENT_ROW
	" FROM events e WHERE EXISTS (SELECT FROM event_registrations r"
	" WHERE r.event_id = e.id AND r.status = 'registered'"
	" AND kqe_event_registration_reader(r.office_id, r.professional_id, r.programme_id))"
	" ORDER BY e.starts_at, e.id LIMIT 1000" };

/* An RFC 3339 UTC timestamp as the API writes them ("…Z") to a UTC icaltime. */
static struct icaltimetype
utc_time(const char *text)
{
	struct tm tm = { 0 };
	if (text == NULL || sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
	                        &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return icaltime_null_time();
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return icaltime_from_timet_with_zone(timegm(&tm), 0, icaltimezone_get_utc_timezone());
}

static void
add_event(icalcomponent *cal, PGresult *res, int i)
{
	json_t *dates = json_loads(PQgetvalue(res, i, 5), 0, NULL);
	size_t n = json_array_size(dates), k;
	json_t *date;
	bool cancelled = strcmp(PQgetvalue(res, i, 4), "cancelled") == 0;
	struct icaltimetype stamp = icaltime_from_timet_with_zone(
	    (time_t)atoll(PQgetvalue(res, i, 6)), 0, icaltimezone_get_utc_timezone());
	json_array_foreach(dates, k, date)
	{
		char uid[96], summary[260];
		snprintf(uid, sizeof(uid), "%s-%zu@kqe", PQgetvalue(res, i, 0), k + 1);
		if (n > 1)
			snprintf(summary, sizeof(summary), "%s (%zu/%zu)", PQgetvalue(res, i, 1),
			    k + 1, n);
		else
			snprintf(summary, sizeof(summary), "%s", PQgetvalue(res, i, 1));
		icalcomponent *ev = icalcomponent_new_vevent();
		icalcomponent_add_property(ev, icalproperty_new_uid(uid));
		icalcomponent_add_property(ev, icalproperty_new_dtstamp(stamp));
		icalcomponent_add_property(ev, icalproperty_new_dtstart(utc_time(json_string_value(
		                                   json_object_get(date, "starts_at")))));
		icalcomponent_add_property(ev, icalproperty_new_dtend(utc_time(json_string_value(
		                                   json_object_get(date, "ends_at")))));
		icalcomponent_add_property(ev, icalproperty_new_summary(summary));
		icalcomponent_add_property(ev, icalproperty_new_location(PQgetvalue(res, i, 3)));
		if (PQgetvalue(res, i, 2)[0] != '\0')
			icalcomponent_add_property(
			    ev, icalproperty_new_description(PQgetvalue(res, i, 2)));
		icalcomponent_add_property(
		    ev, icalproperty_new_status(
		            cancelled ? ICAL_STATUS_CANCELLED : ICAL_STATUS_CONFIRMED));
		icalcomponent_add_component(cal, ev);
	}
	json_decref(dates);
}

static void
reply_calendar(struct request *r, PGresult *res, const char *filename)
{
	icalcomponent *cal = icalcomponent_new_vcalendar();
	icalcomponent_add_property(cal, icalproperty_new_version("2.0"));
	icalcomponent_add_property(cal, icalproperty_new_prodid("-//kqe//Programme events//DE"));
	icalcomponent_add_property(cal, icalproperty_new_method(ICAL_METHOD_PUBLISH));
	for (int i = 0; i < PQntuples(res); i++)
		add_event(cal, res, i);
	char *text = icalcomponent_as_ical_string_r(cal);
	icalcomponent_free(cal);
	/* libical keeps temporary strings in a ring per thread, freed only at thread exit
	 * otherwise: free it after each calendar (docs/design.md). */
	icalmemory_free_ring();
	char *disposition = xasprintf("attachment; filename=\"%s\"", filename);
	reply_header(r, "Content-Disposition", disposition);
	free(disposition);
	reply_bytes(r, 200, "text/calendar; charset=utf-8", text, strlen(text));
	free(text);
}

void
events_calendar(struct request *r)
{
	const char *params[] = { query_get(r, "programme_id") };
	PGresult *res = query_as_caller(r, &stmt_programme_events, 1, params);
	if (res == NULL)
		return;
	reply_calendar(r, res, "events.ics");
	PQclear(res);
}

void
registrations_calendar(struct request *r)
{
	PGresult *res = query_as_caller(r, &stmt_registered_events, 0, NULL);
	if (res == NULL)
		return;
	reply_calendar(r, res, "registered-events.ics");
	PQclear(res);
}
