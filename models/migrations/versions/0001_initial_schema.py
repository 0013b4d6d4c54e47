"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 23:32:26.990574
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    op.create_table('office',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('regency', sa.String(length=200), nullable=False),
    sa.Column('place', sa.String(length=100), nullable=False),
    sa.Column('unit_code', sa.String(length=40), nullable=False),
    sa.Column('example_data', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_office'))
    )
    op.create_table('processed_update',
    sa.Column('update_id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('update_id', name=op.f('pk_processed_update'))
    )
    op.create_table('stored_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('mime_type', sa.String(length=100), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stored_file')),
    sa.UniqueConstraint('sha256', name=op.f('uq_stored_file_sha256'))
    )
    op.create_table('letter_counter',
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('last_sequence', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['office_id'], ['office.id'], name=op.f('fk_letter_counter_office_id_office')),
    sa.PrimaryKeyConstraint('office_id', 'year', name=op.f('pk_letter_counter'))
    )
    op.create_table('unit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('is_secretariat', sa.Boolean(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['office_id'], ['office.id'], name=op.f('fk_unit_office_id_office')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unit')),
    sa.UniqueConstraint('office_id', 'code', name=op.f('uq_unit_office_id_code'))
    )
    op.create_table('indicator',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('level', sa.Enum('tujuan', 'sasaran', 'program', 'kegiatan', name='indicatorlevel', native_enum=False, length=24), nullable=False),
    sa.Column('sasaran', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('definition', sa.Text(), nullable=False),
    sa.Column('unit_of_measure', sa.String(length=60), nullable=False),
    sa.Column('polarity', sa.Enum('higher', 'lower', name='polarity', native_enum=False, length=24), nullable=False),
    sa.Column('lower_formula', sa.Enum('mirror', 'ratio', name='lowerformula', native_enum=False, length=24), nullable=False),
    sa.Column('value_type', sa.Enum('numeric', 'percent', 'text', name='valuetype', native_enum=False, length=24), nullable=False),
    sa.Column('cumulative', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['office_id'], ['office.id'], name=op.f('fk_indicator_office_id_office')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_indicator_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_indicator')),
    sa.UniqueConstraint('office_id', 'code', name=op.f('uq_indicator_office_id_code'))
    )
    op.create_table('person',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('nip', sa.String(length=30), nullable=True),
    sa.Column('role', sa.Enum('kadis', 'sekretaris', 'kasubag', 'kabid', 'staf', 'admin', 'kontak', name='role', native_enum=False, length=24), nullable=False),
    sa.Column('rank', sa.String(length=100), nullable=False),
    sa.Column('position', sa.String(length=200), nullable=False),
    sa.Column('agency_key', sa.String(length=40), nullable=True),
    sa.Column('telegram_user_id', sa.BigInteger(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['office_id'], ['office.id'], name=op.f('fk_person_office_id_office')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_person_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person')),
    sa.UniqueConstraint('office_id', 'nip', name=op.f('uq_person_office_id_nip')),
    sa.UniqueConstraint('telegram_user_id', name=op.f('uq_person_telegram_user_id'))
    )
    op.create_table('acting_appointment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('kadis', 'sekretaris', 'kasubag', 'kabid', 'staf', 'admin', 'kontak', name='role', native_enum=False, length=24), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('absent_person_id', sa.Integer(), nullable=True),
    sa.Column('acting_person_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('plh', 'plt', name='actingkind', native_enum=False, length=24), nullable=False),
    sa.Column('starts_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('ends_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('decree', sa.String(length=100), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('cancelled', sa.Boolean(), nullable=False),
    sa.Column('cancelled_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('cancelled_by_id', sa.Integer(), nullable=True),
    sa.Column('activated_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('finished_at', models.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['absent_person_id'], ['person.id'], name=op.f('fk_acting_appointment_absent_person_id_person')),
    sa.ForeignKeyConstraint(['acting_person_id'], ['person.id'], name=op.f('fk_acting_appointment_acting_person_id_person')),
    sa.ForeignKeyConstraint(['cancelled_by_id'], ['person.id'], name=op.f('fk_acting_appointment_cancelled_by_id_person')),
    sa.ForeignKeyConstraint(['created_by_id'], ['person.id'], name=op.f('fk_acting_appointment_created_by_id_person')),
    sa.ForeignKeyConstraint(['office_id'], ['office.id'], name=op.f('fk_acting_appointment_office_id_office')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_acting_appointment_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_acting_appointment'))
    )
    with op.batch_alter_table('acting_appointment', schema=None) as batch_op:
        batch_op.create_index('ix_acting_appointment_role_range', ['role', 'starts_at', 'ends_at'], unique=False)

    op.create_table('conversation',
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_conversation_person_id_person')),
    sa.PrimaryKeyConstraint('person_id', name=op.f('pk_conversation'))
    )
    op.create_table('cycle',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('quarterly', 'annual', name='cyclekind', native_enum=False, length=24), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('quarter', sa.Integer(), nullable=False),
    sa.Column('document_type', sa.String(length=100), nullable=False),
    sa.Column('status', sa.Enum('active', 'closed', 'cancelled', name='cyclestatus', native_enum=False, length=24), nullable=False),
    sa.Column('instruction', sa.Text(), nullable=False),
    sa.Column('letter_file_id', sa.Integer(), nullable=True),
    sa.Column('started_by_id', sa.Integer(), nullable=False),
    sa.Column('started_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('closed_at', models.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['letter_file_id'], ['stored_file.id'], name=op.f('fk_cycle_letter_file_id_stored_file')),
    sa.ForeignKeyConstraint(['office_id'], ['office.id'], name=op.f('fk_cycle_office_id_office')),
    sa.ForeignKeyConstraint(['started_by_id'], ['person.id'], name=op.f('fk_cycle_started_by_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cycle')),
    sa.UniqueConstraint('office_id', 'kind', 'year', 'quarter', name=op.f('uq_cycle_office_id_kind_year_quarter'))
    )
    op.create_table('invitation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('expires_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('used_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('used_by_telegram_id', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_invitation_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitation')),
    sa.UniqueConstraint('code', name=op.f('uq_invitation_code'))
    )
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('chat_id', sa.BigInteger(), nullable=True),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sending', 'sent', 'failed', name='outboxstatus', native_enum=False, length=24), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('sent_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('telegram_message_id', sa.BigInteger(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_outbox_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_chat_order', ['chat_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_outbox_pending', ['status', 'next_attempt_at'], unique=False)

    op.create_table('target',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('indicator_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('period', sa.Integer(), nullable=False),
    sa.Column('value', models.base.DecimalText(length=48), nullable=True),
    sa.Column('value_text', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['indicator_id'], ['indicator.id'], name=op.f('fk_target_indicator_id_indicator')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_target')),
    sa.UniqueConstraint('indicator_id', 'year', 'period', name=op.f('uq_target_indicator_id_year_period'))
    )
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('cycle_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['person.id'], name=op.f('fk_audit_log_actor_id_person')),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycle.id'], name=op.f('fk_audit_log_cycle_id_cycle')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_table('cycle_indicator',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cycle_id', sa.Integer(), nullable=False),
    sa.Column('indicator_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('target', models.base.DecimalText(length=48), nullable=True),
    sa.Column('target_text', sa.String(length=200), nullable=True),
    sa.Column('assigned_to_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['assigned_to_id'], ['person.id'], name=op.f('fk_cycle_indicator_assigned_to_id_person')),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycle.id'], name=op.f('fk_cycle_indicator_cycle_id_cycle')),
    sa.ForeignKeyConstraint(['indicator_id'], ['indicator.id'], name=op.f('fk_cycle_indicator_indicator_id_indicator')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_cycle_indicator_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cycle_indicator')),
    sa.UniqueConstraint('cycle_id', 'indicator_id', name=op.f('uq_cycle_indicator_cycle_id_indicator_id'))
    )
    op.create_table('delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cycle_id', sa.Integer(), nullable=False),
    sa.Column('agency_key', sa.String(length=40), nullable=False),
    sa.Column('agency_name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sent', 'received', name='deliverystatus', native_enum=False, length=24), nullable=False),
    sa.Column('contact_person_id', sa.Integer(), nullable=True),
    sa.Column('sent_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('received_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('received_by', sa.String(length=200), nullable=False),
    sa.Column('receipt_file_id', sa.Integer(), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['contact_person_id'], ['person.id'], name=op.f('fk_delivery_contact_person_id_person')),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycle.id'], name=op.f('fk_delivery_cycle_id_cycle')),
    sa.ForeignKeyConstraint(['receipt_file_id'], ['stored_file.id'], name=op.f('fk_delivery_receipt_file_id_stored_file')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['person.id'], name=op.f('fk_delivery_recorded_by_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery')),
    sa.UniqueConstraint('cycle_id', 'agency_key', name=op.f('uq_delivery_cycle_id_agency_key'))
    )
    op.create_table('document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cycle_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('draft', 'submitted', 'initialled', 'signed', 'numbered', 'archived', 'superseded', 'returned', name='documentstatus', native_enum=False, length=24), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('workbook_file_id', sa.Integer(), nullable=True),
    sa.Column('pdf_file_id', sa.Integer(), nullable=True),
    sa.Column('chart_file_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('verification_code', sa.String(length=20), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['chart_file_id'], ['stored_file.id'], name=op.f('fk_document_chart_file_id_stored_file')),
    sa.ForeignKeyConstraint(['created_by_id'], ['person.id'], name=op.f('fk_document_created_by_id_person')),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycle.id'], name=op.f('fk_document_cycle_id_cycle')),
    sa.ForeignKeyConstraint(['pdf_file_id'], ['stored_file.id'], name=op.f('fk_document_pdf_file_id_stored_file')),
    sa.ForeignKeyConstraint(['workbook_file_id'], ['stored_file.id'], name=op.f('fk_document_workbook_file_id_stored_file')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document')),
    sa.UniqueConstraint('cycle_id', 'version', name=op.f('uq_document_cycle_id_version')),
    sa.UniqueConstraint('verification_code', name=op.f('uq_document_verification_code'))
    )
    op.create_table('step_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cycle_id', sa.Integer(), nullable=False),
    sa.Column('step_no', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('role', sa.Enum('kadis', 'sekretaris', 'kasubag', 'kabid', 'staf', 'admin', 'kontak', name='role', native_enum=False, length=24), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('open', 'done', 'returned', 'skipped', 'cancelled', name='stepstatus', native_enum=False, length=24), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('started_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('due_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('completed_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('completed_by_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['person.id'], name=op.f('fk_step_run_assignee_id_person')),
    sa.ForeignKeyConstraint(['completed_by_id'], ['person.id'], name=op.f('fk_step_run_completed_by_id_person')),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycle.id'], name=op.f('fk_step_run_cycle_id_cycle')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_step_run_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_step_run'))
    )
    with op.batch_alter_table('step_run', schema=None) as batch_op:
        batch_op.create_index('ix_step_run_cycle_step', ['cycle_id', 'step_no'], unique=False)
        batch_op.create_index('ix_step_run_open_due', ['status', 'due_at'], unique=False)

    op.create_table('submission',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cycle_id', sa.Integer(), nullable=False),
    sa.Column('indicator_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('raw_text', sa.Text(), nullable=False),
    sa.Column('value', models.base.DecimalText(length=48), nullable=True),
    sa.Column('value_text', sa.Text(), nullable=True),
    sa.Column('skipped', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycle.id'], name=op.f('fk_submission_cycle_id_cycle')),
    sa.ForeignKeyConstraint(['indicator_id'], ['indicator.id'], name=op.f('fk_submission_indicator_id_indicator')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_submission_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submission')),
    sa.UniqueConstraint('cycle_id', 'indicator_id', 'revision', name=op.f('uq_submission_cycle_id_indicator_id_revision'))
    )
    op.create_table('approval',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('step_run_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.Enum('paraf', 'sign', 'return', name='approvalaction', native_enum=False, length=24), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('document_sha256', sa.String(length=64), nullable=False),
    sa.Column('acting_as', sa.String(length=20), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['document.id'], name=op.f('fk_approval_document_id_document')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_approval_person_id_person')),
    sa.ForeignKeyConstraint(['step_run_id'], ['step_run.id'], name=op.f('fk_approval_step_run_id_step_run')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approval'))
    )
    op.create_table('evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('file_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['file_id'], ['stored_file.id'], name=op.f('fk_evidence_file_id_stored_file')),
    sa.ForeignKeyConstraint(['submission_id'], ['submission.id'], name=op.f('fk_evidence_submission_id_submission')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence'))
    )
    op.create_table('letter_number',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=100), nullable=False),
    sa.Column('letter_date', sa.Date(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('recipient', sa.Text(), nullable=False),
    sa.Column('cycle_id', sa.Integer(), nullable=True),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycle.id'], name=op.f('fk_letter_number_cycle_id_cycle')),
    sa.ForeignKeyConstraint(['document_id'], ['document.id'], name=op.f('fk_letter_number_document_id_document')),
    sa.ForeignKeyConstraint(['office_id'], ['office.id'], name=op.f('fk_letter_number_office_id_office')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_letter_number_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_letter_number')),
    sa.UniqueConstraint('office_id', 'number', name=op.f('uq_letter_number_office_id_number')),
    sa.UniqueConstraint('office_id', 'year', 'sequence', name=op.f('uq_letter_number_office_id_year_sequence'))
    )
    op.create_table('reminder',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('step_run_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('due_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('sent_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('outbox_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], name=op.f('fk_reminder_outbox_id_outbox')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_reminder_person_id_person')),
    sa.ForeignKeyConstraint(['step_run_id'], ['step_run.id'], name=op.f('fk_reminder_step_run_id_step_run')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reminder')),
    sa.UniqueConstraint('step_run_id', 'kind', 'level', name=op.f('uq_reminder_step_run_id_kind_level'))
    )



def downgrade() -> None:

    op.drop_table('reminder')
    op.drop_table('letter_number')
    op.drop_table('evidence')
    op.drop_table('approval')
    op.drop_table('submission')
    with op.batch_alter_table('step_run', schema=None) as batch_op:
        batch_op.drop_index('ix_step_run_open_due')
        batch_op.drop_index('ix_step_run_cycle_step')

    op.drop_table('step_run')
    op.drop_table('document')
    op.drop_table('delivery')
    op.drop_table('cycle_indicator')
    op.drop_table('audit_log')
    op.drop_table('target')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_pending')
        batch_op.drop_index('ix_outbox_chat_order')

    op.drop_table('outbox')
    op.drop_table('invitation')
    op.drop_table('cycle')
    op.drop_table('conversation')
    with op.batch_alter_table('acting_appointment', schema=None) as batch_op:
        batch_op.drop_index('ix_acting_appointment_role_range')

    op.drop_table('acting_appointment')
    op.drop_table('person')
    op.drop_table('indicator')
    op.drop_table('unit')
    op.drop_table('letter_counter')
    op.drop_table('stored_file')
    op.drop_table('processed_update')
    op.drop_table('office')
    op.drop_table('audit_head')

