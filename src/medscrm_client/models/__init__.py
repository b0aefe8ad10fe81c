"""Contains all the data models used in inputs/outputs"""

from .approve_in import ApproveIn
from .attempt import Attempt
from .body_replay_quarantine import BodyReplayQuarantine
from .body_revoke_review_rejection import BodyRevokeReviewRejection
from .certificate import Certificate
from .certificate_certificate import CertificateCertificate
from .channel_in import ChannelIn
from .channel_in_provider import ChannelInProvider
from .channel_in_settings import ChannelInSettings
from .collect_answer import CollectAnswer
from .complete_in import CompleteIn
from .complete_in_action import CompleteInAction
from .complete_task_response_complete_task import CompleteTaskResponseCompleteTask
from .consent_in import ConsentIn
from .consent_in_channel import ConsentInChannel
from .consent_in_evidence_type_0 import ConsentInEvidenceType0
from .consent_in_purpose import ConsentInPurpose
from .consent_in_status import ConsentInStatus
from .content_in import ContentIn
from .content_in_audience import ContentInAudience
from .content_in_kind import ContentInKind
from .content_in_template_type_0 import ContentInTemplateType0
from .content_patch import ContentPatch
from .content_patch_audience_type_0 import ContentPatchAudienceType0
from .content_patch_kind_type_0 import ContentPatchKindType0
from .content_patch_template_type_0 import ContentPatchTemplateType0
from .correct_in import CorrectIn
from .correct_in_kind import CorrectInKind
from .definition_in import DefinitionIn
from .definition_in_definition import DefinitionInDefinition
from .delivery import Delivery
from .delivery_list import DeliveryList
from .delivery_payload import DeliveryPayload
from .delivery_status import DeliveryStatus
from .detail import Detail
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
from .fix_quarantine_changes import FixQuarantineChanges
from .fix_quarantine_response_fix_quarantine import FixQuarantineResponseFixQuarantine
from .get_person_response_get_person import GetPersonResponseGetPerson
from .held import Held
from .held_legal_hold_type_0 import HeldLegalHoldType0
from .held_restricted_type_0 import HeldRestrictedType0
from .held_tables import HeldTables
from .hold_in import HoldIn
from .hold_in_kind import HoldInKind
from .http_validation_error import HTTPValidationError
from .list_audit_response_200_item import ListAuditResponse200Item
from .list_content_status_type_0 import ListContentStatusType0
from .list_deliveries_status_type_0 import ListDeliveriesStatusType0
from .list_events_response_list_events import ListEventsResponseListEvents
from .list_imports_response_200_item import ListImportsResponse200Item
from .list_journeys_response_list_journeys import ListJourneysResponseListJourneys
from .list_micro_segments_response_list_micro_segments import (
    ListMicroSegmentsResponseListMicroSegments,
)
from .list_quarantine_response_200_item import ListQuarantineResponse200Item
from .list_quarantine_status import ListQuarantineStatus
from .list_segments_response_list_segments import ListSegmentsResponseListSegments
from .list_sources_response_200_item import ListSourcesResponse200Item
from .list_tags_response_list_tags import ListTagsResponseListTags
from .list_tasks_response_list_tasks import ListTasksResponseListTasks
from .lookup_person_response_lookup_person import LookupPersonResponseLookupPerson
from .lookup_person_type import LookupPersonType
from .me_response_me import MeResponseMe
from .micro_body import MicroBody
from .person_records_response_person_records import PersonRecordsResponsePersonRecords
from .person_scores_response_person_scores import PersonScoresResponsePersonScores
from .person_timeline_response_person_timeline import (
    PersonTimelineResponsePersonTimeline,
)
from .policy import Policy
from .policy_in import PolicyIn
from .policy_in_action_type_0 import PolicyInActionType0
from .policy_list import PolicyList
from .preview_in import PreviewIn
from .preview_in_fields_type_0 import PreviewInFieldsType0
from .preview_in_fields_type_0_additional_property import (
    PreviewInFieldsType0AdditionalProperty,
)
from .put_channel_channel import PutChannelChannel
from .put_policy_body import PutPolicyBody
from .reason_in import ReasonIn
from .refresh_body import RefreshBody
from .refresh_micro_segments_response_refresh_micro_segments import (
    RefreshMicroSegmentsResponseRefreshMicroSegments,
)
from .refresh_scores_response_refresh_scores import RefreshScoresResponseRefreshScores
from .refresher_status_response_refresher_status import (
    RefresherStatusResponseRefresherStatus,
)
from .replay_quarantine_response_replay_quarantine import (
    ReplayQuarantineResponseReplayQuarantine,
)
from .replayed import Replayed
from .request_list import RequestList
from .restrict_in import RestrictIn
from .restrict_in_kind import RestrictInKind
from .revoke_review_rejection_response_revoke_review_rejection import (
    RevokeReviewRejectionResponseRevokeReviewRejection,
)
from .run import Run
from .run_in import RunIn
from .run_list import RunList
from .run_result_type_0 import RunResultType0
from .score_distributions_response_score_distributions import (
    ScoreDistributionsResponseScoreDistributions,
)
from .search_persons_response_search_persons import SearchPersonsResponseSearchPersons
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
from .send_check import SendCheck
from .send_check_values import SendCheckValues
from .send_in import SendIn
from .send_in_channel import SendInChannel
from .send_in_purpose import SendInPurpose
from .send_in_variables import SendInVariables
from .send_proof import SendProof
from .send_proofs import SendProofs
from .set_retention_policy_category import SetRetentionPolicyCategory
from .sso_in import SsoIn
from .sso_in_role_map_type_0 import SsoInRoleMapType0
from .sso_out import SsoOut
from .sso_out_role_map import SsoOutRoleMap
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
from .tag_persons_response_tag_persons import TagPersonsResponseTagPersons
from .update_in import UpdateIn
from .update_in_definition import UpdateInDefinition
from .update_in_step_map import UpdateInStepMap
from .validation_error import ValidationError
from .validation_error_context import ValidationErrorContext

__all__ = (
    "ApproveIn",
    "Attempt",
    "BodyReplayQuarantine",
    "BodyRevokeReviewRejection",
    "Certificate",
    "CertificateCertificate",
    "ChannelIn",
    "ChannelInProvider",
    "ChannelInSettings",
    "CollectAnswer",
    "CompleteIn",
    "CompleteInAction",
    "CompleteTaskResponseCompleteTask",
    "ConsentIn",
    "ConsentInChannel",
    "ConsentInEvidenceType0",
    "ConsentInPurpose",
    "ConsentInStatus",
    "ContentIn",
    "ContentInAudience",
    "ContentInKind",
    "ContentInTemplateType0",
    "ContentPatch",
    "ContentPatchAudienceType0",
    "ContentPatchKindType0",
    "ContentPatchTemplateType0",
    "CorrectIn",
    "CorrectInKind",
    "DefinitionIn",
    "DefinitionInDefinition",
    "Delivery",
    "DeliveryList",
    "DeliveryPayload",
    "DeliveryStatus",
    "Detail",
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
    "FixQuarantineChanges",
    "FixQuarantineResponseFixQuarantine",
    "GetPersonResponseGetPerson",
    "HTTPValidationError",
    "Held",
    "HeldLegalHoldType0",
    "HeldRestrictedType0",
    "HeldTables",
    "HoldIn",
    "HoldInKind",
    "ListAuditResponse200Item",
    "ListContentStatusType0",
    "ListDeliveriesStatusType0",
    "ListEventsResponseListEvents",
    "ListImportsResponse200Item",
    "ListJourneysResponseListJourneys",
    "ListMicroSegmentsResponseListMicroSegments",
    "ListQuarantineResponse200Item",
    "ListQuarantineStatus",
    "ListSegmentsResponseListSegments",
    "ListSourcesResponse200Item",
    "ListTagsResponseListTags",
    "ListTasksResponseListTasks",
    "LookupPersonResponseLookupPerson",
    "LookupPersonType",
    "MeResponseMe",
    "MicroBody",
    "PersonRecordsResponsePersonRecords",
    "PersonScoresResponsePersonScores",
    "PersonTimelineResponsePersonTimeline",
    "Policy",
    "PolicyIn",
    "PolicyInActionType0",
    "PolicyList",
    "PreviewIn",
    "PreviewInFieldsType0",
    "PreviewInFieldsType0AdditionalProperty",
    "PutChannelChannel",
    "PutPolicyBody",
    "ReasonIn",
    "RefreshBody",
    "RefreshMicroSegmentsResponseRefreshMicroSegments",
    "RefreshScoresResponseRefreshScores",
    "RefresherStatusResponseRefresherStatus",
    "ReplayQuarantineResponseReplayQuarantine",
    "Replayed",
    "RequestList",
    "RestrictIn",
    "RestrictInKind",
    "RevokeReviewRejectionResponseRevokeReviewRejection",
    "Run",
    "RunIn",
    "RunList",
    "RunResultType0",
    "ScoreDistributionsResponseScoreDistributions",
    "SearchPersonsResponseSearchPersons",
    "SegmentIn",
    "SegmentInFieldsType0",
    "SegmentInFieldsType0AdditionalProperty",
    "SegmentInKind",
    "SegmentUpdate",
    "SegmentUpdateFieldsType0",
    "SegmentUpdateFieldsType0AdditionalProperty",
    "SendCheck",
    "SendCheckValues",
    "SendIn",
    "SendInChannel",
    "SendInPurpose",
    "SendInVariables",
    "SendProof",
    "SendProofs",
    "SetRetentionPolicyCategory",
    "SsoIn",
    "SsoInRoleMapType0",
    "SsoOut",
    "SsoOutRoleMap",
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
    "TagPersonsResponseTagPersons",
    "UpdateIn",
    "UpdateInDefinition",
    "UpdateInStepMap",
    "ValidationError",
    "ValidationErrorContext",
)
