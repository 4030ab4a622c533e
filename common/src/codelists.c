/*
 * The code lists themselves. Each list is written once, as an X-macro of
 * X(code, label_de, label_en); DEFINE_LIST expands it twice, into the
 * struct code table and into the NULL-terminated values array the validators
 * use, so the two cannot drift. LISTS() names every list once and fixes the
 * order in which GET /v1/codelists serves them (module order, as in
 * docs/domain.md).
 *
 * Codes of the official § 8a statistics are German-derived (ASCII
 * transliterations: "ae" for "ä"); labels are proper German.
 */
#include "kqe/codelists.h"

#include <string.h>

#include "kqe/util.h"

/* ---- module 1: directory ---- */

#define CODES_office_kind(X)                                                                       \
	X("kreisfreie_stadt", "Kreisfreie Stadt", "County-level city")                             \
	X("kreis", "Kreis", "District (Kreis)")                                                    \
	X("kreisangehoerige_stadt", "Kreisangehörige Stadt", "Town within a district")

#define CODES_region(X)                                                                            \
	X("LVR", "LVR-Landesjugendamt Rheinland", "LVR regional youth office (Rhineland)")         \
	X("LWL", "LWL-Landesjugendamt Westfalen", "LWL regional youth office (Westphalia-Lippe)")

/* The Länder, as ISO 3166-2:DE codes: offices outside NRW take part in nationwide programmes. */
#define CODES_state(X)                                                                             \
	X("BW", "Baden-Württemberg", "Baden-Württemberg")                                          \
	X("BY", "Bayern", "Bavaria")                                                               \
	X("BE", "Berlin", "Berlin")                                                                \
	X("BB", "Brandenburg", "Brandenburg")                                                      \
	X("HB", "Bremen", "Bremen")                                                                \
	X("HH", "Hamburg", "Hamburg")                                                              \
	X("HE", "Hessen", "Hesse")                                                                 \
	X("MV", "Mecklenburg-Vorpommern", "Mecklenburg-Western Pomerania")                         \
	X("NI", "Niedersachsen", "Lower Saxony")                                                   \
	X("NW", "Nordrhein-Westfalen", "North Rhine-Westphalia")                                   \
	X("RP", "Rheinland-Pfalz", "Rhineland-Palatinate")                                         \
	X("SL", "Saarland", "Saarland")                                                            \
	X("SN", "Sachsen", "Saxony")                                                               \
	X("ST", "Sachsen-Anhalt", "Saxony-Anhalt")                                                 \
	X("SH", "Schleswig-Holstein", "Schleswig-Holstein")                                        \
	X("TH", "Thüringen", "Thuringia")

/* ---- module 2: § 8 procedures; the phases in the only order they may move ---- */

#define CODES_procedure_phase(X)                                                                   \
	X("planned", "Geplant", "Planned")                                                         \
	X("case_selection", "Fallauswahl", "Case selection")                                       \
	X("case_analysis", "Fallanalysen", "Case analyses")                                        \
	X("structure_analysis", "Analyse der Strukturqualität", "Structural-quality analysis")     \
	X("evaluation", "Auswertung", "Evaluation")                                                \
	X("report", "Bericht", "Report")                                                           \
	X("completed", "Abgeschlossen", "Completed")

/* ---- module 3: case analyses, aligned with the official § 8a statistics ---- */

#define CODES_selection(X)                                                                         \
	X("random", "Zufallsstichprobe", "Random sample")                                          \
	X("added_by_office", "Vom Jugendamt zusätzlich ausgewählt", "Added by the office")

#define CODES_sex(X)                                                                               \
	X("maennlich", "männlich", "Male")                                                         \
	X("weiblich", "weiblich", "Female")                                                        \
	X("divers", "divers", "Diverse")                                                           \
	X("ohne_angabe", "ohne Angabe", "Not stated")

#define CODES_parents_age_group(X)                                                                 \
	X("unter_18", "unter 18 Jahre", "Under 18")                                                \
	X("18_bis_unter_27", "18 bis unter 27 Jahre", "18 to under 27")                            \
	X("27_und_aelter", "27 Jahre und älter", "27 and older")                                   \
	X("unbekannt", "unbekannt", "Unknown")

/* "Bekanntwerden der möglichen Kindeswohlgefährdung durch …", in the statistics' order. */
#define CODES_reporter(X)                                                                          \
	X("polizei_gericht_staatsanwaltschaft", "Polizei/Gericht/Staatsanwaltschaft",              \
	    "Police, court or public prosecutor")                                                  \
	X("schule", "Schule", "School")                                                            \
	X("kita_kindertagespflege", "Kindertageseinrichtung/Kindertagespflegeperson",              \
	    "Day-care centre or childminder")                                                      \
	X("gesundheitswesen", "Hebamme/Arzt/Klinik/Gesundheitsamt u. ä. Dienste",                  \
	    "Midwife, doctor, hospital, public health office or similar service")                  \
	X("verwandte", "Verwandte", "Relatives")                                                   \
	X("bekannte_nachbarn", "Bekannte/Nachbarn", "Acquaintances or neighbours")                 \
	X("eltern", "Eltern(teil)/Personensorgeberechtigte(r)",                                    \
	    "Parent(s) or person with parental responsibility")                                    \
	X("minderjaehrige_selbst", "Minderjährige(r) selbst", "The minor themself")                \
	X("soziale_dienste_jugendamt", "Soziale Dienste/Jugendamt",                                \
	    "Social services or youth welfare office")                                             \
	X("beratungsstelle", "Beratungsstelle", "Counselling service")                             \
	X("einrichtung_jugendhilfe", "Einrichtung der Jugendarbeit/Kinder- und Jugendhilfe",       \
	    "Youth work or child and youth welfare service")                                       \
	X("anonym", "anonym", "Anonymous")                                                         \
	X("sonstige", "Sonstige", "Other")

#define CODES_assessment_result(X)                                                                 \
	X("akute_gefaehrdung", "akute Kindeswohlgefährdung", "Acute endangerment of the child")    \
	X("latente_gefaehrdung", "latente Kindeswohlgefährdung",                                   \
	    "Latent endangerment of the child")                                                    \
	X("hilfebedarf_ohne_gefaehrdung", "Hilfebedarf ohne Kindeswohlgefährdung",                 \
	    "Need for help without endangerment")                                                  \
	X("weder_gefaehrdung_noch_hilfebedarf", "weder Kindeswohlgefährdung noch Hilfebedarf",     \
	    "Neither endangerment nor need for help")

/* Only for an acute or latent endangerment; several may apply. */
#define CODES_endangerment_form(X)                                                                 \
	X("vernachlaessigung", "Vernachlässigung", "Neglect")                                      \
	X("koerperliche_misshandlung", "körperliche Misshandlung", "Physical abuse")               \
	X("psychische_misshandlung", "psychische Misshandlung", "Psychological abuse")             \
	X("sexuelle_gewalt", "sexuelle Gewalt", "Sexual violence")

/* What a case analysis rates, each on the "rating" scale. */
#define CODES_quality_dimension(X)                                                                 \
	X("intake", "Eingang und Erfassung der Meldung", "Intake and recording of the report")     \
	X("first_assessment", "Ersteinschätzung", "First assessment")                              \
	X("direct_contact", "Unmittelbarer Eindruck vom Kind", "Direct impression of the child")   \
	X("four_eyes_assessment", "Zusammenwirken mehrerer Fachkräfte",                            \
	    "Assessment by several professionals together")                                        \
	X("child_participation", "Beteiligung des Kindes oder Jugendlichen",                       \
	    "Participation of the child or young person")                                          \
	X("parent_participation", "Beteiligung der Eltern", "Participation of the parents")        \
	X("safety_planning", "Schutzplanung und Sicherheitsabsprachen", "Safety planning")         \
	X("help_planning", "Hilfeplanung", "Planning of help")                                     \
	X("cooperation", "Zusammenarbeit mit anderen Stellen", "Cooperation with other agencies")  \
	X("documentation", "Dokumentation", "Documentation")                                       \
	X("case_transfer", "Fallübergabe bei Zuständigkeitswechsel",                               \
	    "Case transfer on change of responsibility")

/* 1 = fully met … 4 = not met (see codelists.h). */
#define CODES_rating(X)                                                                            \
	X("1", "1 – gut umgesetzt", "1 – fully met")                                               \
	X("2", "2 – überwiegend umgesetzt", "2 – mostly met")                                      \
	X("3", "3 – teilweise umgesetzt", "3 – partly met")                                        \
	X("4", "4 – nicht umgesetzt", "4 – not met")

/* Learning themes of the case analyses; topics (module 5) use the same frame. */
#define CODES_learning_theme(X)                                                                    \
	X("information_sharing", "Informationsaustausch zwischen Fachkräften und Stellen",         \
	    "Information sharing between professionals and agencies")                              \
	X("risk_assessment_update", "Fortschreibung der Gefährdungseinschätzung",                  \
	    "Updating the risk assessment")                                                        \
	X("collegial_assessment", "Kollegiale Beratung und Fallreflexion",                         \
	    "Collegial assessment and case reflection")                                            \
	X("direct_contact_with_child", "Direkter Kontakt zum Kind",                                \
	    "Direct contact with the child")                                                       \
	X("documentation", "Dokumentation", "Documentation")                                       \
	X("childs_voice", "Perspektive und Stimme des Kindes", "The child's voice")                \
	X("engaging_reluctant_families", "Zugang zu schwer erreichbaren Familien",                 \
	    "Engaging reluctant families")                                                         \
	X("critical_thinking_bias", "Kritisches Denken und Wahrnehmungsfehler",                    \
	    "Critical thinking and bias")                                                          \
	X("multi_agency_roles", "Rollen und Zuständigkeiten im Hilfesystem",                       \
	    "Roles and responsibilities across agencies")                                          \
	X("supervision_leadership", "Fachaufsicht, Supervision und Leitung",                       \
	    "Supervision and leadership")                                                          \
	X("resources_caseload", "Personalausstattung und Fallbelastung", "Resources and caseload") \
	X("tools_forms", "Arbeitshilfen, Instrumente und Formulare", "Tools and forms")            \
	X("specific_risk_babies", "Besonderes Risiko: Säuglinge und Kleinkinder",                  \
	    "Specific risk: babies and infants")                                                   \
	X("specific_risk_domestic_abuse", "Besonderes Risiko: häusliche Gewalt",                   \
	    "Specific risk: domestic abuse")                                                       \
	X("specific_risk_parental_mental_health_substances",                                       \
	    "Besonderes Risiko: psychische Erkrankung oder Sucht der Eltern",                      \
	    "Specific risk: parental mental illness or substance misuse")                          \
	X("specific_risk_disability", "Besonderes Risiko: Behinderung",                            \
	    "Specific risk: disability")                                                           \
	X("specific_risk_extrafamilial", "Besonderes Risiko: Gefährdung außerhalb der Familie",    \
	    "Specific risk: harm outside the family")                                              \
	X("specific_risk_sexual_abuse", "Besonderes Risiko: sexuelle Gewalt",                      \
	    "Specific risk: sexual abuse")

/* ---- module 5: quality-development topics ---- */

#define CODES_topic_status(X)                                                                      \
	X("identified", "Festgestellt", "Identified")                                              \
	X("in_progress", "In Bearbeitung", "In progress")                                          \
	X("implemented", "Umgesetzt", "Implemented")                                               \
	X("dropped", "Nicht weiterverfolgt", "Dropped")

#define CODES_topic_priority(X)                                                                    \
	X("high", "Hoch", "High")                                                                  \
	X("medium", "Mittel", "Medium")                                                            \
	X("low", "Niedrig", "Low")

/* ---- module 6: § 7 advice requests ---- */

#define CODES_advice_kind(X)                                                                       \
	X("case_specific", "Fallbezogene Beratung", "Case-specific question")                      \
	X("structural", "Fallübergreifende Beratung (Problemkonstellation)",                       \
	    "Structural question (a problem constellation across cases)")

/* Along the § 8a process, from the first report to the file. */
#define CODES_advice_topic(X)                                                                      \
	X("intake", "Eingang und Erfassung der Meldung", "Intake of the report")                   \
	X("first_assessment", "Ersteinschätzung und Dringlichkeit",                                \
	    "First assessment and urgency")                                                        \
	X("direct_contact", "Unmittelbarer Eindruck, Hausbesuch", "Direct contact, home visit")    \
	X("child_involvement", "Beteiligung des Kindes oder Jugendlichen",                         \
	    "Involving the child or young person")                                                 \
	X("parents_involvement", "Beteiligung der Eltern", "Involving the parents")                \
	X("several_professionals", "Zusammenwirken mehrerer Fachkräfte",                           \
	    "Assessment by several professionals")                                                 \
	X("cooperation", "Zusammenarbeit mit anderen Professionen",                                \
	    "Cooperation with other professions")                                                  \
	X("safety_planning", "Schutzplanung und Hilfen", "Safety planning and services")           \
	X("family_court", "Anrufung des Familiengerichts", "Family court")                         \
	X("taking_into_care", "Inobhutnahme", "Taking into care")                                  \
	X("documentation", "Dokumentation", "Documentation")                                       \
	X("handover", "Fallübergabe und Zuständigkeitswechsel", "Handover between offices")        \
	X("other", "Sonstiges", "Other")

#define CODES_advice_urgency(X)                                                                    \
	X("routine", "Regulär", "Routine")                                                         \
	X("soon", "Zeitnah", "Soon")                                                               \
	X("urgent", "Dringend", "Urgent")

#define CODES_advice_decline_reason(X)                                                             \
	X("supervisory_matter", "Aufsichtsangelegenheit der oberen Landesjugendbehörde",           \
	    "A supervisory matter for the upper youth authority")                                  \
	X("case_decision", "Entscheidung im Einzelfall, die beim Jugendamt liegt",                 \
	    "A decision in the case that is the office's own")                                     \
	X("outside_remit", "Kein Gegenstand der Qualitätsberatung", "Outside the remit of advice") \
	X("duplicate", "Bereits gestellte Anfrage", "Asked already")

#define CODES_advice_status(X)                                                                     \
	X("submitted", "Eingereicht", "Submitted")                                                 \
	X("accepted", "Angenommen", "Accepted")                                                    \
	X("in_progress", "In Bearbeitung", "In progress")                                          \
	X("answered", "Beantwortet", "Answered")                                                   \
	X("closed", "Abgeschlossen", "Closed")                                                     \
	X("declined", "Abgelehnt", "Declined")                                                     \
	X("withdrawn", "Zurückgezogen", "Withdrawn")

/* ---- module 7: § 10 protection concepts in foster care ---- */

#define CODES_concept_element(X)                                                                   \
	X("childrens_rights", "Kinderrechte und wie sie erklärt werden",                           \
	    "Children's rights and how they are explained")                                        \
	X("foster_carer_participation", "Beteiligung der Pflegepersonen",                          \
	    "Participation of foster carers")                                                      \
	X("young_people_participation", "Beteiligung junger Menschen",                             \
	    "Participation of young people")                                                       \
	X("complaint_internal", "Beschwerdeweg innerhalb des Dienstes",                            \
	    "Complaint route inside the service")                                                  \
	X("complaint_external", "Beschwerdeweg außerhalb des Dienstes",                            \
	    "Complaint route outside the service")                                                 \
	X("risk_analysis", "Risikoanalyse", "Risk analysis")                                       \
	X("suspicion_procedure", "Handlungsplan bei Verdacht auf Gewalt",                          \
	    "Conduct in suspected violence")                                                       \
	X("contact_persons", "Ansprechpersonen", "Contact persons")                                \
	X("training", "Qualifizierung", "Training")                                                \
	X("review", "Regelmäßige Überprüfung", "Review")

#define CODES_concept_participant(X)                                                               \
	X("foster_carers", "Pflegepersonen", "Foster carers")                                      \
	X("young_people", "Junge Menschen", "Young people")                                        \
	X("birth_parents", "Herkunftseltern", "Birth parents")                                     \
	X("professionals", "Fachkräfte", "Professionals")                                          \
	X("external_experts", "Externe Fachleute", "External experts")

#define CODES_concept_status(X)                                                                    \
	X("current", "Aktuell", "Current")                                                         \
	X("review_overdue", "Überprüfung überfällig", "Review overdue")                            \
	X("missing", "Fehlt", "Missing")

/* ---- module 8: programmes ---- */

/* The role a participant is selected for (Modellkommune, Partnerkommune, Pilotjugendamt). */
#define CODES_programme_role(X)                                                                    \
	X("model", "Modellkommune", "Model municipality")                                          \
	X("partner", "Partnerkommune", "Partner municipality")                                     \
	X("pilot", "Pilotjugendamt", "Pilot office")

/* How a selection criterion of a call is answered. */
#define CODES_criterion_answer(X)                                                                  \
	X("yes_no", "Ja/Nein", "Yes or no")                                                        \
	X("text", "Freitext", "Free text")

#define CODES_application_status(X)                                                                \
	X("submitted", "Eingereicht", "Submitted")                                                 \
	X("waitlisted", "Nachrückliste", "Waiting list")                                           \
	X("selected", "Ausgewählt", "Selected")                                                    \
	X("rejected", "Nicht ausgewählt", "Not selected")                                          \
	X("withdrawn", "Zurückgezogen", "Withdrawn")

/* The kinds of programme events, as the founding documents name them. */
#define CODES_event_kind(X)                                                                        \
	X("workshop", "Werkstatt", "Workshop")                                                     \
	X("online_seminar", "Online-Seminar", "Online seminar")                                    \
	X("network_meeting", "Netzwerktreffen", "Network meeting")                                 \
	X("participation_workshop", "Beteiligungswerkstatt", "Participation workshop")             \
	X("working_group_meeting", "Sitzung der Arbeitsgruppe", "Working-group meeting")           \
	X("expert_workshop", "Fachworkshop mit externen Fachleuten", "Expert workshop")            \
	X("transfer_conference", "Transfertagung", "Transfer conference")

/* What a programme's materials library holds. */
#define CODES_material_kind(X)                                                                     \
	X("instrument", "Instrument", "Instrument")                                                \
	X("method", "Methode", "Method")                                                           \
	X("slides", "Präsentation", "Slides")                                                      \
	X("recording", "Aufzeichnung", "Recording")                                                \
	X("document", "Dokument", "Document")                                                      \
	X("other", "Sonstiges", "Other")

/* Who reads a material: the programme's participants, or everyone (passed on). */
#define CODES_material_visibility(X)                                                               \
	X("programme", "Nur für Beteiligte des Programms", "Programme participants only")          \
	X("public", "Öffentlich", "Public")

/* A question to a programme's service desk. */
#define CODES_service_request_status(X)                                                            \
	X("open", "Offen", "Open")                                                                 \
	X("answered", "Beantwortet", "Answered")                                                   \
	X("closed", "Abgeschlossen", "Closed")

/* A professional's registration for a programme's protected area. */
#define CODES_professional_status(X)                                                               \
	X("unconfirmed", "E-Mail-Adresse nicht bestätigt", "Address not confirmed")                \
	X("confirmed", "E-Mail-Adresse bestätigt", "Address confirmed")                            \
	X("approved", "Freigeschaltet", "Approved")                                                \
	X("rejected", "Abgelehnt", "Rejected")

#define CODES_registration_status(X)                                                               \
	X("registered", "Angemeldet", "Registered")                                                \
	X("waitlisted", "Warteliste", "Waiting list")                                              \
	X("cancelled", "Abgemeldet", "Cancelled")

/* Size of an office by its population under 18, for the selection's diversity view. */
#define CODES_office_size(X)                                                                       \
	X("small", "unter 20.000 unter 18-Jährige", "Under 20,000 under-18s")                      \
	X("medium", "20.000 bis unter 50.000", "20,000 to under 50,000")                           \
	X("large", "50.000 und mehr", "50,000 and more")                                           \
	X("unknown", "unbekannt", "Unknown")

/* ---- the API roles (principal.h role_name(), in enum order) ---- */

#define CODES_role(X)                                                                              \
	X("office_staff", "Fachkraft im Jugendamt", "Office staff")                                \
	X("office_lead", "Leitung im Jugendamt", "Office lead")                                    \
	X("institute", "Externe Begleitung (Institut)", "Review institute")                        \
	X("advisor", "Qualitätsberatung im Landesjugendamt",                                       \
	    "Advisor at the regional youth office")                                                \
	X("ministry", "Oberste Landesjugendbehörde", "State ministry")                             \
	X("admin", "Administration", "Administrator")                                              \
	X("provider_staff", "Fachkraft eines freien Trägers der Pflegekinderhilfe",                \
	    "Staff of a foster-care provider")                                                     \
	X("programme_team", "Programmteam", "Programme team")                                      \
	X("professional", "Registrierte Fachkraft eines Programms", "Registered professional")

/* X(id, title_de, title_en): every list once, in the order they are served. */
#define LISTS(X)                                                                                   \
	X(office_kind, "Art des Jugendamts", "Kind of youth welfare office")                       \
	X(region, "Landesjugendamt", "Regional youth office")                                      \
	X(state, "Land", "State (Land)")                                                           \
	X(procedure_phase, "Phase des Qualitätsentwicklungsverfahrens",                            \
	    "Phase of the quality procedure")                                                      \
	X(selection, "Fallauswahl", "Case selection")                                              \
	X(sex, "Geschlecht", "Sex")                                                                \
	X(parents_age_group, "Altersgruppe der Eltern", "Parents' age group")                      \
	X(reporter, "Bekanntwerden der möglichen Kindeswohlgefährdung durch",                      \
	    "Possible endangerment made known by")                                                 \
	X(assessment_result, "Ergebnis der Gefährdungseinschätzung",                               \
	    "Result of the risk assessment")                                                       \
	X(endangerment_form, "Art der Kindeswohlgefährdung", "Form of endangerment")               \
	X(quality_dimension, "Qualitätsdimension", "Quality dimension")                            \
	X(rating, "Bewertung", "Rating")                                                           \
	X(learning_theme, "Lernthema", "Learning theme")                                           \
	X(topic_status, "Stand des Qualitätsentwicklungsthemas", "Status of the topic")            \
	X(topic_priority, "Priorität", "Priority")                                                 \
	X(advice_kind, "Art der Beratungsanfrage", "Kind of advice request")                       \
	X(advice_status, "Stand der Beratungsanfrage", "Status of the advice request")             \
	X(advice_topic, "Thema der Beratungsanfrage", "Topic of the advice request")               \
	X(advice_urgency, "Dringlichkeit", "Urgency")                                              \
	X(advice_decline_reason, "Grund der Ablehnung", "Reason for declining")                    \
	X(concept_element, "Element des Schutzkonzepts", "Element of the protection concept")      \
	X(concept_participant, "Beteiligt an der Erstellung", "Took part in making it")            \
	X(concept_status, "Stand des Schutzkonzepts", "State of the protection concept")           \
	X(programme_role, "Rolle im Programm", "Role in the programme")                            \
	X(criterion_answer, "Art der Antwort", "Kind of answer")                                   \
	X(application_status, "Stand der Bewerbung", "Status of the application")                  \
	X(office_size, "Größe des Jugendamts", "Size of the office")                               \
	X(event_kind, "Art der Veranstaltung", "Kind of event")                                    \
	X(registration_status, "Stand der Anmeldung", "Status of the registration")                \
	X(professional_status, "Stand der Registrierung", "Status of the registration")            \
	X(service_request_status, "Stand der Anfrage an die Servicestelle",                        \
	    "Status of the service-desk question")                                                 \
	X(material_kind, "Art des Materials", "Kind of material")                                  \
	X(material_visibility, "Sichtbarkeit des Materials", "Visibility of the material")         \
	X(role, "Rolle", "Role")

#define CODE_ENTRY(code, de, en) { code, de, en },
#define CODE_VALUE(code, de, en) code,

#define DEFINE_LIST(name, de, en)                                                                  \
	static const struct code name##_codes[] = { CODES_##name(CODE_ENTRY) };                    \
	const char *const codelist_##name##_values[] = { CODES_##name(CODE_VALUE) NULL };          \
	static const struct codelist name##_list = { #name, de, en, name##_codes,                  \
		ARRAY_LEN(name##_codes) };
LISTS(DEFINE_LIST)

#define LIST_POINTER(name, de, en) &name##_list,
const struct codelist *const codelists[] = { LISTS(LIST_POINTER) };
const size_t codelists_count = ARRAY_LEN(codelists);
#define LIST_ID(name, de, en) #name,
const char *const codelist_ids[] = { LISTS(LIST_ID) NULL };

/* Parallel to codelists[]: struct codelist has no room for them (its shape is the API's). */
#define LIST_VALUES(name, de, en) codelist_##name##_values,
static const char *const *const list_values[] = { LISTS(LIST_VALUES) };

const struct codelist *
codelist_find(const char *id)
{
	if (id == NULL)
		return NULL;
	for (size_t i = 0; i < codelists_count; i++)
		if (strcmp(codelists[i]->id, id) == 0)
			return codelists[i];
	return NULL;
}

const struct code *
codelist_code(const struct codelist *list, const char *code)
{
	if (list == NULL || code == NULL)
		return NULL;
	for (size_t i = 0; i < list->count; i++)
		if (strcmp(list->codes[i].code, code) == 0)
			return &list->codes[i];
	return NULL;
}

bool
codelist_has(const struct codelist *list, const char *code)
{
	return codelist_code(list, code) != NULL;
}

const char *const *
codelist_values(const struct codelist *list)
{
	for (size_t i = 0; i < codelists_count; i++)
		if (codelists[i] == list)
			return list_values[i];
	return NULL;
}
