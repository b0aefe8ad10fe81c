"""Contains all the data models used in inputs/outputs"""

from .approve_in import ApproveIn
from .attempt import Attempt
from .audit_api_v1_audit_get_response_200_item import AuditApiV1AuditGetResponse200Item
from .body_replay_quarantine_api_v1_quarantine_replay_post import (
    BodyReplayQuarantineApiV1QuarantineReplayPost,
)
from .certificate import Certificate
from .certificate_certificate import CertificateCertificate
from .channel_in import ChannelIn
from .channel_in_provider import ChannelInProvider
from .channel_in_settings import ChannelInSettings
from .collect_answer import CollectAnswer
from .consent_in import ConsentIn
from .consent_in_channel import ConsentInChannel
from .consent_in_evidence_type_0 import ConsentInEvidenceType0
from .consent_in_purpose import ConsentInPurpose
from .consent_in_status import ConsentInStatus
from .content_in import ContentIn
from .content_in_audience import ContentInAudience
from .content_in_kind import ContentInKind
from .content_in_template_type_0 import ContentInTemplateType0
from .correct_in import CorrectIn
from .correct_in_kind import CorrectInKind
from .definition_in import DefinitionIn
from .definition_in_definition import DefinitionInDefinition
from .delivery import Delivery
from .delivery_list import DeliveryList
from .delivery_payload import DeliveryPayload
from .delivery_status import DeliveryStatus
from .detail import Detail
from .distributions_api_v1_scores_distributions_get_response_distributions_api_v1_scores_distributions_get import (
    DistributionsApiV1ScoresDistributionsGetResponseDistributionsApiV1ScoresDistributionsGet,
)
from .dsr_request import DsrRequest
from .dsr_request_result_type_0 import DsrRequestResultType0
from .enroll_in import EnrollIn
from .enroll_in_context import EnrollInContext
from .erase_in import EraseIn
from .erase_in_kind import EraseInKind
from .error_item import ErrorItem
from .error_list import ErrorList
from .evaluate_in import EvaluateIn
from .field_reason import FieldReason
from .fix_quarantine_api_v1_quarantine_entry_id_fix_post_changes import (
    FixQuarantineApiV1QuarantineEntryIdFixPostChanges,
)
from .fix_quarantine_api_v1_quarantine_entry_id_fix_post_response_fix_quarantine_api_v1_quarantine_entry_id_fix_post import (
    FixQuarantineApiV1QuarantineEntryIdFixPostResponseFixQuarantineApiV1QuarantineEntryIdFixPost,
)
from .get_person_api_v1_persons_person_id_get_response_get_person_api_v1_persons_person_id_get import (
    GetPersonApiV1PersonsPersonIdGetResponseGetPersonApiV1PersonsPersonIdGet,
)
from .held import Held
from .held_legal_hold_type_0 import HeldLegalHoldType0
from .held_restricted_type_0 import HeldRestrictedType0
from .held_tables import HeldTables
from .hold_in import HoldIn
from .hold_in_kind import HoldInKind
from .http_validation_error import HTTPValidationError
from .list_content_api_v1_content_get_status_type_0 import (
    ListContentApiV1ContentGetStatusType0,
)
from .list_deliveries_api_v1_webhooks_subscription_id_deliveries_get_status_type_0 import (
    ListDeliveriesApiV1WebhooksSubscriptionIdDeliveriesGetStatusType0,
)
from .list_events_api_v1_events_get_response_list_events_api_v1_events_get import (
    ListEventsApiV1EventsGetResponseListEventsApiV1EventsGet,
)
from .list_imports_api_v1_imports_get_response_200_item import (
    ListImportsApiV1ImportsGetResponse200Item,
)
from .list_journeys_api_v1_journeys_get_response_list_journeys_api_v1_journeys_get import (
    ListJourneysApiV1JourneysGetResponseListJourneysApiV1JourneysGet,
)
from .list_quarantine_api_v1_quarantine_get_response_200_item import (
    ListQuarantineApiV1QuarantineGetResponse200Item,
)
from .list_quarantine_api_v1_quarantine_get_status import (
    ListQuarantineApiV1QuarantineGetStatus,
)
from .list_segments_api_v1_segments_get_response_list_segments_api_v1_segments_get import (
    ListSegmentsApiV1SegmentsGetResponseListSegmentsApiV1SegmentsGet,
)
from .list_sources_api_v1_sources_get_response_200_item import (
    ListSourcesApiV1SourcesGetResponse200Item,
)
from .list_tags_api_v1_tags_get_response_list_tags_api_v1_tags_get import (
    ListTagsApiV1TagsGetResponseListTagsApiV1TagsGet,
)
from .lookup_api_v1_persons_lookup_get_response_lookup_api_v1_persons_lookup_get import (
    LookupApiV1PersonsLookupGetResponseLookupApiV1PersonsLookupGet,
)
from .lookup_api_v1_persons_lookup_get_type import LookupApiV1PersonsLookupGetType
from .me_api_v1_me_get_response_me_api_v1_me_get import MeApiV1MeGetResponseMeApiV1MeGet
from .micro_body import MicroBody
from .micro_segments_api_v1_scores_micro_segments_get_response_micro_segments_api_v1_scores_micro_segments_get import (
    MicroSegmentsApiV1ScoresMicroSegmentsGetResponseMicroSegmentsApiV1ScoresMicroSegmentsGet,
)
from .person_scores_api_v1_scores_persons_person_id_get_response_person_scores_api_v1_scores_persons_person_id_get import (
    PersonScoresApiV1ScoresPersonsPersonIdGetResponsePersonScoresApiV1ScoresPersonsPersonIdGet,
)
from .preview_in import PreviewIn
from .preview_in_fields_type_0 import PreviewInFieldsType0
from .preview_in_fields_type_0_additional_property import (
    PreviewInFieldsType0AdditionalProperty,
)
from .put_channel_api_v1_channels_channel_put_channel import (
    PutChannelApiV1ChannelsChannelPutChannel,
)
from .put_policy_api_v1_outreach_policy_put_body import (
    PutPolicyApiV1OutreachPolicyPutBody,
)
from .reason_in import ReasonIn
from .records_api_v1_persons_person_id_records_get_response_records_api_v1_persons_person_id_records_get import (
    RecordsApiV1PersonsPersonIdRecordsGetResponseRecordsApiV1PersonsPersonIdRecordsGet,
)
from .refresh_api_v1_scores_refresh_post_response_refresh_api_v1_scores_refresh_post import (
    RefreshApiV1ScoresRefreshPostResponseRefreshApiV1ScoresRefreshPost,
)
from .refresh_body import RefreshBody
from .refresh_micro_api_v1_scores_micro_segments_refresh_post_response_refresh_micro_api_v1_scores_micro_segments_refresh_post import (
    RefreshMicroApiV1ScoresMicroSegmentsRefreshPostResponseRefreshMicroApiV1ScoresMicroSegmentsRefreshPost,
)
from .refresher_status_api_v1_segments_refresher_get_response_refresher_status_api_v1_segments_refresher_get import (
    RefresherStatusApiV1SegmentsRefresherGetResponseRefresherStatusApiV1SegmentsRefresherGet,
)
from .replay_quarantine_api_v1_quarantine_replay_post_response_replay_quarantine_api_v1_quarantine_replay_post import (
    ReplayQuarantineApiV1QuarantineReplayPostResponseReplayQuarantineApiV1QuarantineReplayPost,
)
from .replayed import Replayed
from .request_list import RequestList
from .restrict_in import RestrictIn
from .restrict_in_kind import RestrictInKind
from .search_api_v1_persons_get_response_search_api_v1_persons_get import (
    SearchApiV1PersonsGetResponseSearchApiV1PersonsGet,
)
from .segment_in import SegmentIn
from .segment_in_fields_type_0 import SegmentInFieldsType0
from .segment_in_fields_type_0_additional_property import (
    SegmentInFieldsType0AdditionalProperty,
)
from .segment_in_kind import SegmentInKind
from .segment_update import SegmentUpdate
from .segment_update_fields_type_0 import SegmentUpdateFieldsType0
from .segment_update_fields_type_0_additional_property import (
    SegmentUpdateFieldsType0AdditionalProperty,
)
from .send_in import SendIn
from .send_in_channel import SendInChannel
from .send_in_purpose import SendInPurpose
from .send_in_variables import SendInVariables
from .subject import Subject
from .subject_kind import SubjectKind
from .subscription import Subscription
from .subscription_in import SubscriptionIn
from .subscription_list import SubscriptionList
from .subscription_patch import SubscriptionPatch
from .tag_in import TagIn
from .tag_in_category import TagInCategory
from .tag_in_fields_type_0 import TagInFieldsType0
from .tag_in_fields_type_0_additional_property import TagInFieldsType0AdditionalProperty
from .tag_in_refresh import TagInRefresh
from .tag_in_value_type import TagInValueType
from .tag_persons_api_v1_tags_key_persons_get_response_tag_persons_api_v1_tags_key_persons_get import (
    TagPersonsApiV1TagsKeyPersonsGetResponseTagPersonsApiV1TagsKeyPersonsGet,
)
from .timeline_api_v1_persons_person_id_timeline_get_response_timeline_api_v1_persons_person_id_timeline_get import (
    TimelineApiV1PersonsPersonIdTimelineGetResponseTimelineApiV1PersonsPersonIdTimelineGet,
)
from .update_in import UpdateIn
from .update_in_definition import UpdateInDefinition
from .update_in_step_map import UpdateInStepMap
from .validation_error import ValidationError
from .validation_error_context import ValidationErrorContext

__all__ = (
    "ApproveIn",
    "Attempt",
    "AuditApiV1AuditGetResponse200Item",
    "BodyReplayQuarantineApiV1QuarantineReplayPost",
    "Certificate",
    "CertificateCertificate",
    "ChannelIn",
    "ChannelInProvider",
    "ChannelInSettings",
    "CollectAnswer",
    "ConsentIn",
    "ConsentInChannel",
    "ConsentInEvidenceType0",
    "ConsentInPurpose",
    "ConsentInStatus",
    "ContentIn",
    "ContentInAudience",
    "ContentInKind",
    "ContentInTemplateType0",
    "CorrectIn",
    "CorrectInKind",
    "DefinitionIn",
    "DefinitionInDefinition",
    "Delivery",
    "DeliveryList",
    "DeliveryPayload",
    "DeliveryStatus",
    "Detail",
    "DistributionsApiV1ScoresDistributionsGetResponseDistributionsApiV1ScoresDistributionsGet",
    "DsrRequest",
    "DsrRequestResultType0",
    "EnrollIn",
    "EnrollInContext",
    "EraseIn",
    "EraseInKind",
    "ErrorItem",
    "ErrorList",
    "EvaluateIn",
    "FieldReason",
    "FixQuarantineApiV1QuarantineEntryIdFixPostChanges",
    "FixQuarantineApiV1QuarantineEntryIdFixPostResponseFixQuarantineApiV1QuarantineEntryIdFixPost",
    "GetPersonApiV1PersonsPersonIdGetResponseGetPersonApiV1PersonsPersonIdGet",
    "HTTPValidationError",
    "Held",
    "HeldLegalHoldType0",
    "HeldRestrictedType0",
    "HeldTables",
    "HoldIn",
    "HoldInKind",
    "ListContentApiV1ContentGetStatusType0",
    "ListDeliveriesApiV1WebhooksSubscriptionIdDeliveriesGetStatusType0",
    "ListEventsApiV1EventsGetResponseListEventsApiV1EventsGet",
    "ListImportsApiV1ImportsGetResponse200Item",
    "ListJourneysApiV1JourneysGetResponseListJourneysApiV1JourneysGet",
    "ListQuarantineApiV1QuarantineGetResponse200Item",
    "ListQuarantineApiV1QuarantineGetStatus",
    "ListSegmentsApiV1SegmentsGetResponseListSegmentsApiV1SegmentsGet",
    "ListSourcesApiV1SourcesGetResponse200Item",
    "ListTagsApiV1TagsGetResponseListTagsApiV1TagsGet",
    "LookupApiV1PersonsLookupGetResponseLookupApiV1PersonsLookupGet",
    "LookupApiV1PersonsLookupGetType",
    "MeApiV1MeGetResponseMeApiV1MeGet",
    "MicroBody",
    "MicroSegmentsApiV1ScoresMicroSegmentsGetResponseMicroSegmentsApiV1ScoresMicroSegmentsGet",
    "PersonScoresApiV1ScoresPersonsPersonIdGetResponsePersonScoresApiV1ScoresPersonsPersonIdGet",
    "PreviewIn",
    "PreviewInFieldsType0",
    "PreviewInFieldsType0AdditionalProperty",
    "PutChannelApiV1ChannelsChannelPutChannel",
    "PutPolicyApiV1OutreachPolicyPutBody",
    "ReasonIn",
    "RecordsApiV1PersonsPersonIdRecordsGetResponseRecordsApiV1PersonsPersonIdRecordsGet",
    "RefreshApiV1ScoresRefreshPostResponseRefreshApiV1ScoresRefreshPost",
    "RefreshBody",
    "RefreshMicroApiV1ScoresMicroSegmentsRefreshPostResponseRefreshMicroApiV1ScoresMicroSegmentsRefreshPost",
    "RefresherStatusApiV1SegmentsRefresherGetResponseRefresherStatusApiV1SegmentsRefresherGet",
    "ReplayQuarantineApiV1QuarantineReplayPostResponseReplayQuarantineApiV1QuarantineReplayPost",
    "Replayed",
    "RequestList",
    "RestrictIn",
    "RestrictInKind",
    "SearchApiV1PersonsGetResponseSearchApiV1PersonsGet",
    "SegmentIn",
    "SegmentInFieldsType0",
    "SegmentInFieldsType0AdditionalProperty",
    "SegmentInKind",
    "SegmentUpdate",
    "SegmentUpdateFieldsType0",
    "SegmentUpdateFieldsType0AdditionalProperty",
    "SendIn",
    "SendInChannel",
    "SendInPurpose",
    "SendInVariables",
    "Subject",
    "SubjectKind",
    "Subscription",
    "SubscriptionIn",
    "SubscriptionList",
    "SubscriptionPatch",
    "TagIn",
    "TagInCategory",
    "TagInFieldsType0",
    "TagInFieldsType0AdditionalProperty",
    "TagInRefresh",
    "TagInValueType",
    "TagPersonsApiV1TagsKeyPersonsGetResponseTagPersonsApiV1TagsKeyPersonsGet",
    "TimelineApiV1PersonsPersonIdTimelineGetResponseTimelineApiV1PersonsPersonIdTimelineGet",
    "UpdateIn",
    "UpdateInDefinition",
    "UpdateInStepMap",
    "ValidationError",
    "ValidationErrorContext",
)
